"""Relatel itself: the one HTTP client (a token per request, safe retries, a rate limit per
tenant), whose account a token acts on, and what that account can use."""
