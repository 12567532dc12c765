"""MCP over HTTP for remote agents: streamable HTTP at /mcp (both protocol eras), legacy SSE at
/sse, /healthz; behind bearer auth, DNS-rebinding protection, a body size limit and a session cap.

Two auth modes:
- `api-key` (one tenant): the server holds the Relatel token; clients present one of the keys in
  RELATEL_MCP_API_KEYS (several, for rotation), compared in constant time.
- `passthrough` (many tenants): each request's `Authorization: Bearer <relatel token>` is used
  upstream for that request only, after the token was checked once against Relatel (cached).
  The connection pool is shared; the token never is.
`none` is for loopback only (local tools such as the conformance suite).

Sessions are bound to the credential that opened them: a request for another credential's
session id is answered as if the session did not exist, so nobody can read or answer (e.g.
confirm!) a question asked in someone else's session.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from mcp.server import ServerRequestContext
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .client import RelatelClient, Tenant, UpstreamRequest
from .config import ConfigError, Settings
from .errors import ToolError
from .policy import Gate
from .server import build_server

Auth = Literal["api-key", "passthrough", "none"]
Transport = Literal["http", "sse"]
PRINCIPAL = "relatel_mcp.principal"  # scope key: who the credential belongs to
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    transport: Transport = "http"
    auth: Auth = "api-key"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    stateless: bool = False
    allowed_hosts: tuple[str, ...] = ()  # beyond loopback; "*" turns the Host/Origin check off
    max_body_bytes: int = 1_048_576
    max_sessions: int = 200

    def check(self) -> None:
        if self.auth == "none" and not _loopback(self.host):
            raise ConfigError(
                f"refusing to serve {self.host} without auth: use --auth api-key or passthrough"
            )
        if self.auth == "api-key" and not self.api_keys:
            raise ConfigError(
                "--auth api-key needs keys in RELATEL_MCP_API_KEYS (comma-separated); "
                "or use --auth passthrough (clients send their Relatel token)"
            )
        if self.auth == "api-key" and any(len(key) < 16 for key in self.api_keys):
            raise ConfigError("every key in RELATEL_MCP_API_KEYS must be at least 16 characters")


def http_app(settings: Settings, client: RelatelClient, gate: Gate, options: HttpOptions) -> Starlette:
    options.check()
    server = build_server(settings, client, gate, _tenant_of(settings, options))
    security = _transport_security(options)
    manager = StreamableHTTPSessionManager(
        app=server,
        stateless=options.stateless,
        security_settings=security,
        max_request_body_size=options.max_body_bytes,
        max_sessions=options.max_sessions,
    )
    sse = SseServerTransport(
        "/messages/", security_settings=security, max_request_body_size=options.max_body_bytes
    )
    sse_connections = _Counter(options.max_sessions)

    async def handle_sse(request: Request) -> Response:
        if not sse_connections.acquire():
            return _error(503, "too_many_sessions", "Too many open sessions; try again later.")
        try:
            async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            sse_connections.release()
        return Response()

    routes: list[Route | Mount] = [Route("/healthz", _healthz)]
    if options.transport == "http":
        routes.append(Route("/mcp", StreamableHTTPASGIApp(manager)))
    routes += [Route("/sse", handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(SessionBinding, limit=options.max_sessions * 4)
    app.add_middleware(BearerAuth, check=_credential_check(client, options))
    return app


def _tenant_of(settings: Settings, options: HttpOptions) -> Callable[[ServerRequestContext], Tenant]:
    if options.auth != "passthrough":
        tenant = Tenant(settings.require_token())
        return lambda ctx: tenant

    def from_request(ctx: ServerRequestContext) -> Tenant:
        token = _bearer(dict(ctx.request.headers)) if ctx.request is not None else None
        if not token:  # BearerAuth lets no request through without one
            raise ToolError("unauthorized", "No Relatel token came with this request.", 401)
        return Tenant(token)

    return from_request


def _transport_security(options: HttpOptions) -> TransportSecuritySettings:
    if "*" in options.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = [f"{h}:*" for h in ("127.0.0.1", "localhost", "[::1]")] + list(options.allowed_hosts)
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in options.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


# ------------------------------------------------------------------------------ credentials


Check = Callable[[str], Awaitable[str | None]]  # credential -> principal, or None when refused


def _credential_check(client: RelatelClient, options: HttpOptions) -> Check | None:
    if options.auth == "none":
        return None
    if options.auth == "api-key":
        keys = [key.encode() for key in options.api_keys]

        async def api_key(credential: str) -> str | None:
            given = credential.encode()
            matches = [hmac.compare_digest(given, key) for key in keys]  # every key, every time
            return f"key:{matches.index(True)}" if any(matches) else None

        return api_key
    return PassthroughVerifier(client)


class PassthroughVerifier:
    """Is this a Relatel token? Asked once of Relatel (GET /api/v2/employee), then cached."""

    def __init__(
        self, client: RelatelClient, ttl: float = 300.0, refused_ttl: float = 30.0, size: int = 10_000
    ):
        self.client = client
        self.ttl, self.refused_ttl, self.size = ttl, refused_ttl, size
        self._cache: OrderedDict[str, tuple[bool, float]] = OrderedDict()

    async def __call__(self, credential: str) -> str | None:
        tenant = Tenant(credential)
        cached = self._cache.get(tenant.id)
        if cached is None or cached[1] < time.monotonic():
            response = await self.client.send(UpstreamRequest("GET", "/api/v2/employee"), tenant)
            if response.status_code not in (200, 401, 403):
                raise Unavailable(f"Relatel answered HTTP {response.status_code} when checking the token")
            valid = response.status_code == 200
            cached = (valid, time.monotonic() + (self.ttl if valid else self.refused_ttl))
            self._cache[tenant.id] = cached
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(tenant.id)
        return tenant.id if cached[0] else None


class Unavailable(Exception):
    """The credential could not be checked right now (Relatel unreachable or failing)."""


class BearerAuth:
    """401 with a `WWW-Authenticate` challenge before anything else runs, except for /healthz."""

    def __init__(self, app: ASGIApp, check: Check | None) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz" or self.check is None:
            return await self.app(scope, receive, send)
        credential = _bearer({k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]})
        try:
            principal = await self.check(credential) if credential else None
        except (Unavailable, ToolError) as exc:
            return await _error(503, "unavailable", f"Cannot check the credential now: {exc}")(
                scope, receive, send
            )
        if principal is None:
            problem = "invalid_token" if credential else "missing"
            response = _error(401, "unauthorized", "A valid bearer credential is required.")
            response.headers["WWW-Authenticate"] = f'Bearer realm="relatel-mcp", error="{problem}"'
            return await response(scope, receive, send)
        scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and 0 < len(credential) <= 4096 else None


# ------------------------------------------------------------------------------ sessions


_SSE_SESSION = re.compile(rb"session_id=([0-9a-fA-F-]{16,64})")


class SessionBinding:
    """Binds each MCP session to the principal that opened it; other principals get a 404."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._owners: OrderedDict[str, str | None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        principal = scope.get(PRINCIPAL)
        session = _session_of(scope)
        if session is not None and session in self._owners and self._owners[session] != principal:
            return await _error(404, "session_not_found", "Session not found.")(scope, receive, send)
        await self.app(scope, receive, self._watch(send, principal, scope["path"] == "/sse"))

    def _watch(self, send: Send, principal: str | None, sse: bool) -> Send:
        bound = False

        async def watched(message: Message) -> None:
            nonlocal bound
            if not bound and (session := _created_session(message, sse)):
                self._bind(session, principal)
                bound = True
            await send(message)

        return watched

    def _bind(self, session: str, principal: str | None) -> None:
        self._owners[session] = principal
        while len(self._owners) > self.limit:
            self._owners.popitem(last=False)


def _created_session(message: Message, sse: bool) -> str | None:
    """A session id the server just handed out: the streamable HTTP header, or SSE's endpoint event."""
    if message["type"] == "http.response.start":
        for key, value in message.get("headers", []):
            if key.lower() == b"mcp-session-id":
                return value.decode("latin-1")
    elif (
        sse
        and message["type"] == "http.response.body"
        and (match := _SSE_SESSION.search(message.get("body", b"")))
    ):
        return match.group(1).decode()
    return None


def _session_of(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == b"mcp-session-id":
            return value.decode("latin-1")
    match = re.search(r"(?:^|&)session_id=([^&]+)", scope.get("query_string", b"").decode("latin-1"))
    return match.group(1) if match else None


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit, self.value = limit, 0

    def acquire(self) -> bool:
        if self.value >= self.limit:
            return False
        self.value += 1
        return True

    def release(self) -> None:
        self.value -= 1


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(options: HttpOptions, url: str) -> str:
    endpoints = f"{url}/mcp and {url}/sse" if options.transport == "http" else f"{url}/sse"
    mode = "stateless" if options.stateless else "stateful"
    return f"relatel-mcp: serving MCP at {endpoints} ({mode}, auth {options.auth}); health at {url}/healthz"
