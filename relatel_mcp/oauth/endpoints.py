"""The SDK's authorization-server routes (create_auth_routes), with three of ours in their place:

- `/register`: the SDK's handler behind a per-address rate limit and a small body limit; the
  provider refuses bad metadata and a full registry (clients.py).
- `/revoke`: RFC 7009 with the SDK's client authentication. The SDK's handler requires a
  `client_secret` field even of a public client, which then cannot revoke at all; RFC 7009 §2.1
  has it send its `client_id` alone.
- the RFC 8414 metadata, saying so: public clients (`none`) at /token and /revoke.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.routes import (
    REGISTRATION_PATH,
    REVOCATION_PATH,
    build_metadata,
    create_auth_routes,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp

from ..upstream.ratelimit import RateLimiter
from .clients import MAX_BODY_BYTES, RegistryFull, address_of
from .server import OAuthServer

METADATA_PATH = "/.well-known/oauth-authorization-server"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def auth_routes(oauth: OAuthServer, auth: AuthSettings) -> list[Route]:
    """The SDK's routes for `auth` (registration and revocation enabled), three of them ours."""
    registration, revocation = auth.client_registration_options, auth.revocation_options
    assert registration is not None and registration.enabled and revocation is not None and revocation.enabled
    ours = {
        METADATA_PATH: _cors(MetadataHandler(_metadata(auth)).handle, ["GET", "OPTIONS"]),
        REGISTRATION_PATH: _cors(Registration(oauth, registration).handle, ["POST", "OPTIONS"]),
        REVOCATION_PATH: _cors(Revocation(oauth).handle, ["POST", "OPTIONS"]),
    }
    sdk = create_auth_routes(oauth, issuer_url=auth.issuer_url, client_registration_options=registration,
                             revocation_options=revocation)  # fmt: skip
    return [Route(r.path, ours[r.path], methods=r.methods) if r.path in ours else r for r in sdk]


def _metadata(auth: AuthSettings) -> OAuthMetadata:
    """The SDK's RFC 8414 metadata, which names only secret-based client authentication."""
    assert auth.client_registration_options is not None and auth.revocation_options is not None
    metadata = build_metadata(
        auth.issuer_url, None, auth.client_registration_options, auth.revocation_options
    )
    methods = ["client_secret_post", "client_secret_basic", "none"]
    metadata.token_endpoint_auth_methods_supported = methods
    metadata.revocation_endpoint_auth_methods_supported = methods
    return metadata


def _cors(handler: Callable[[Request], Awaitable[Response]], methods: list[str]) -> ASGIApp:
    """As the SDK wraps its own: CORS outermost (its answers to browsers carry it), a body limit."""
    limited = RequestBodyLimitMiddleware(request_response(handler), MAX_BODY_BYTES)
    return CORSMiddleware(limited, allow_origins="*", allow_methods=methods,
                          allow_headers=[MCP_PROTOCOL_VERSION_HEADER])  # fmt: skip


class Registration:
    """RFC 7591 registration, at most `per_client` an hour from one address (429 beyond, with
    Retry-After), and none while the registry is full (503)."""

    def __init__(self, oauth: OAuthServer, options: ClientRegistrationOptions) -> None:
        self.sdk = RegistrationHandler(oauth, options)
        per_client = oauth.registrations.per_client
        self.per_client = RateLimiter(per_client / 3600, per_client, max_wait=0)

    async def handle(self, request: Request) -> Response:
        address = address_of(request.client.host if request.client else "unknown")
        if wait := self.per_client.take_now(address):
            return _refused(429, "too many registrations from this address", wait)
        try:
            return await self.sdk.handle(request)
        except RegistryFull:
            return _refused(503, "too many registered clients are waiting to complete a login", 600)


def _refused(status: int, why: str, retry_after: float) -> Response:
    body = {"error": "temporarily_unavailable", "error_description": f"{why}; try again later"}
    return JSONResponse(body, status, headers={**_NO_STORE, "Retry-After": str(max(1, round(retry_after)))})


class Revocation:
    """RFC 7009 revocation: the client authenticated as the SDK does it (a public client by its
    client_id), then the grant of its token ended. 200 whether or not there was such a token."""

    def __init__(self, oauth: OAuthServer) -> None:
        self.oauth, self.clients = oauth, ClientAuthenticator(oauth)

    async def handle(self, request: Request) -> Response:
        try:
            client = await self.clients.authenticate_request(request)
        except AuthenticationError as exc:
            body = {"error": "invalid_client", "error_description": exc.message}
            return JSONResponse(body, 401, headers=_NO_STORE)
        token = (await request.form()).get("token")
        if not isinstance(token, str) or not token:
            body = {"error": "invalid_request", "error_description": "token is required"}
            return JSONResponse(body, 400, headers=_NO_STORE)
        await self.oauth.revoke(token, client.client_id)
        return Response(status_code=200, headers=_NO_STORE)
