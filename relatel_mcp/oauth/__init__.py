"""Logging in with Relatel's OAuth 2.0 (authorization code), locally and for remote agents.

relatel.py    Relatel as an OAuth server: its authorize URL and code exchange, for a registered app
login.py      `relatel-mcp login / whoami / logout`: a loopback redirect, the token stored 0600
              (or in the OS keyring), used by the stdio server when RELATEL_TOKEN is unset
server.py     `serve --auth oauth`: relatel-mcp as the OAuth 2.1 authorization server of its MCP
              clients (the SDK's routes and handlers) and an OAuth client of Relatel; its own
              tokens never go upstream, and the Relatel token never goes to a client
clients.py    which clients /register takes (redirect URIs, sizes) and how many (per address, waiting)
endpoints.py  the SDK's auth routes, with our metadata, a rate-limited /register and /revoke
"""
