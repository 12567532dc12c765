"""Relatel as an OAuth 2.0 server, for an app registered with it (client id and secret).

Relatel's documented flow: send the user's browser to
`/api/v2/authorize?client_id&response_type=code&redirect_uri` (plus `state`, which comes back),
then POST `/api/v2/token?client_id&client_secret&grant_type=authorization_code&redirect_uri&code`,
parameters in the query string, which answers `{"access_token": "..."}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx2

# Where `relatel-mcp login` waits for Relatel to send the browser back (register it for your app).
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"


class RelatelRefused(Exception):
    """Relatel did not give a token; the message says why, without any secret."""


@dataclass(frozen=True)
class RelatelApp:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self.base_url.rstrip('/')}/api/v2/authorize?{urlencode(query)}"

    async def exchange(self, code: str, redirect_uri: str, *, timeout: float = 15.0) -> str:
        """The access token for an authorization code (which works once)."""
        query = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
            "code": code,
        }
        async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            try:
                response = await http.post(f"{self.base_url.rstrip('/')}/api/v2/token", params=query)
            except httpx2.TransportError as exc:
                raise RelatelRefused(f"could not reach Relatel ({type(exc).__name__})") from None
        try:
            token = response.json().get("access_token") if response.is_success else None
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise RelatelRefused(
                f"Relatel refused the code (HTTP {response.status_code}: {_error(response)})"
            )
        return token


def _error(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no details"
    return str(body.get("error", "no details"))[:100] if isinstance(body, dict) else "no details"
