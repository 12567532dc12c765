"""MCP over HTTP for remote agents: streamable HTTP at /mcp (both protocol eras), legacy SSE at
/sse, approval pages at /approve/, /healthz, and /readyz and /metrics (operations.py, each with its
own rule); behind bearer auth, DNS-rebinding protection, a body size limit and session caps.

Auth modes:
- `api-key` (one tenant): the server holds the Relatel token; clients present one of the keys in
  RELATEL_MCP_API_KEYS (several, for rotation), compared in constant time.
- `passthrough` (many tenants): each request's `Authorization: Bearer <relatel token>` is used
  upstream for that request only, after the token was checked against Relatel (cached). Checks of
  unknown tokens are rate-limited per client address and in all, so random bearers cannot make
  the server flood Relatel. The connection pool is shared; the token never is. This is the API-key
  style, outside the MCP OAuth profile.
- `oauth` (many tenants, the MCP authorization spec): the server is its clients' OAuth 2.1
  authorization server and Relatel's OAuth client (oauth/server.py); the SDK's bearer middleware
  checks its tokens and answers 401 with `resource_metadata`.
`none` is for loopback only (local tools such as the conformance suite).

Sessions are bound to the credential that opened them by the SDK itself, under the very key it
routes by (the canonical session UUID, for SSE), for exactly as long as the session lives: we hand
it the principal as an authenticated user. A request for someone else's session is answered as
if the session did not exist (404). Requests that name a session ambiguously (a repeated
`session_id`, two `Mcp-Session-Id` headers, a header that disagrees with the query) and requests
with two `Authorization` headers are refused (400) before anything else runs. A session that has
had no request for `session_idle_seconds` ends, over either transport (sessions.py).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import (
    AuthenticatedUser,
    BearerAuthBackend,
    RequireAuthMiddleware,
    authorization_context,
)
from mcp.server.auth.provider import AccessToken, ProviderTokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..app import App, own_tenant
from ..core.errors import ConfigError
from ..internals import open_sessions, session_owners
from ..logs import AccessLog
from ..oauth.clients import RegistrationLimits
from ..oauth.endpoints import auth_routes
from ..oauth.relatel import RelatelApp
from ..oauth.server import OAuthServer
from ..policy.approvals import PAGE_PATH
from ..policy.seal import load_secret
from ..settings import SESSION_IDLE_SECONDS, Settings
from ..upstream.accounts import Accounts, Unavailable
from ..upstream.client import Tenant
from ..upstream.ratelimit import RateLimiter
from ..web.approval_pages import PagesAt, approval_routes
from ..web.serving import ConnectionLimits
from .operations import Operations, Readiness
from .server import TenantOf, build_server, the_tenant
from .sessions import IdleWatch

Auth = Literal["api-key", "passthrough", "oauth", "none"]
Transport = Literal["http", "sse"]
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1: what a bearer credential may be


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    transport: Transport = "http"
    auth: Auth = "api-key"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    stateless: bool = False
    allowed_hosts: tuple[str, ...] = ()  # beyond loopback; "*" turns the Host/Origin check off
    public_url: str | None = None  # where browsers reach this server (approval pages)
    max_body_bytes: int = 1_048_576
    max_sessions: int = 200
    max_sessions_per_tenant: int = 20
    session_idle_seconds: float = SESSION_IDLE_SECONDS  # a session without requests this long ends
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    checks_per_client: int = 20  # upstream checks of unknown credentials per 10 s, per client address
    checks_total: int = 100  # and in all
    oauth_app: RelatelApp | None = field(default=None, repr=False)  # this server's app at Relatel
    registrations: RegistrationLimits = field(default_factory=RegistrationLimits)  # oauth's /register
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics's bearer; None: 404

    def check(self) -> None:
        if self.auth == "none" and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve {self.host} without auth: use --auth api-key or passthrough"
            )
        if self.auth == "api-key" and not self.api_keys:
            loopback = (
                f"to try it on this machine alone: --auth none (loopback only, as {self.host} is); "
                if is_loopback(self.host)
                else ""
            )
            raise ConfigError(
                "--auth api-key (the default) needs keys in RELATEL_MCP_API_KEYS (comma-separated); "
                f"{loopback}or --auth passthrough (clients send their Relatel token)"
            )
        if self.auth == "api-key" and any(len(key) < 16 for key in self.api_keys):
            raise ConfigError("every key in RELATEL_MCP_API_KEYS must be at least 16 characters")
        if self.public_url is not None and not re.fullmatch(
            r"https?://[^/?#\s]+(/[^?#\s]*)?", self.public_url
        ):
            raise ConfigError(
                f"--public-url must be an http(s) URL such as https://mcp.example.com, not {self.public_url!r}"
            )
        if self.auth == "oauth":
            self._check_oauth()

    def _check_oauth(self) -> None:
        if self.oauth_app is None:
            raise ConfigError(
                "--auth oauth needs this server's app at Relatel: set RELATEL_CLIENT_ID and "
                "RELATEL_CLIENT_SECRET (its redirect URI is <public URL>/oauth/callback)"
            )
        url = self.public_url or ""
        if not re.fullmatch(r"(https://[^/?#\s]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)", url):
            raise ConfigError(
                "--auth oauth needs --public-url: the https origin clients and browsers reach this server "
                "at (no path), e.g. https://mcp.example.com (http only on loopback)"
            )


def http_app(app: App, options: HttpOptions) -> Starlette:
    options.check()
    settings = app.settings
    approvals = app.gate.approvals
    oauth = _oauth_server(app, options) if options.auth == "oauth" else None
    tenant_of = _tenant_of(settings, options, oauth)
    server = build_server(app, tenant_of, _pages_of(options))
    security = _transport_security(options)
    manager = StreamableHTTPSessionManager(
        app=server,
        stateless=options.stateless,
        security_settings=security,
        max_request_body_size=options.max_body_bytes,
        max_sessions=options.max_sessions,
        session_idle_timeout=options.session_idle_seconds,
    )
    sse = SseServerTransport(
        "/messages/", security_settings=security, max_request_body_size=options.max_body_bytes
    )
    sse_sessions: Counter[tuple | None] = Counter()
    app.metrics.sessions("sse", sse_sessions.total)

    async def handle_sse(request: Request) -> Response:
        owner = _owner(request.scope)
        if sse_sessions.total() >= options.max_sessions:
            return _error(503, "too_many_sessions", "Too many open sessions; try again later.")
        if owner is not None and sse_sessions[owner] >= options.max_sessions_per_tenant:
            return _error(503, "too_many_sessions", "Too many open sessions for this credential.")
        sse_sessions[owner] += 1
        try:
            async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
                idle = IdleWatch(options.session_idle_seconds)  # as the SDK ends streamable HTTP's
                with idle.scope:
                    await server.run(*idle.streams(read, write), server.create_initialization_options())
        finally:
            sse_sessions[owner] -= 1
            if not sse_sessions[owner]:  # kept only for owners with a session open
                del sse_sessions[owner]
        return Response()

    protect = _protector(oauth)
    routes: list[Route | Mount] = [Route("/healthz", _healthz), *approval_routes(approvals, security)]
    if oauth is not None:
        routes += _oauth_routes(oauth)
    if options.transport == "http":
        cap = TenantSessionCap(StreamableHTTPASGIApp(manager), manager, options.max_sessions_per_tenant)
        routes.append(Route("/mcp", protect(cap)))
        app.metrics.sessions("streamable_http", lambda: open_sessions(manager))
    routes += [
        Route(
            "/sse", handle_sse if oauth is None else protect(request_response(handle_sse)), methods=["GET"]
        ),
        Mount("/messages/", app=protect(sse.handle_post_message)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    web = Starlette(routes=routes, lifespan=lifespan)
    if oauth is not None:  # the SDK's bearer check: 401 with resource_metadata, tokens for /mcp only
        web.add_middleware(AuthContextMiddleware)
        resource = _auth_settings(oauth).resource_server_url
        backend = BearerAuthBackend(ProviderTokenVerifier(oauth), resource_server_url=resource)
        web.add_middleware(AuthenticationMiddleware, backend=backend)
    else:
        web.add_middleware(BearerAuth, check=_credential_check(app.accounts, options))
    readiness = Readiness(app.gate.store, app.client, app.metrics)  # outside auth: rules of their own
    web.add_middleware(Operations, readiness=readiness, metrics=app.metrics, token=options.metrics_token)
    web.add_middleware(UnambiguousRequests)
    web.add_middleware(AccessLog)  # outermost: every request gets its line, refused ones too
    return web


def _oauth_server(app: App, options: HttpOptions) -> OAuthServer:
    settings = app.settings
    assert options.oauth_app is not None and options.public_url is not None  # options.check()
    secret = load_secret(settings.state_dir, settings.secret)
    return OAuthServer(app.gate.store, app.accounts, options.oauth_app, options.public_url, secret,
                       options.registrations)  # fmt: skip


def _auth_settings(oauth: OAuthServer) -> AuthSettings:
    """The SDK's settings: its URL type keeps a path-less issuer without a trailing slash, as
    RFC 8414 compares issuers exactly. That is AuthSettings' own validation of the URLs as text
    (`url_preserve_empty_path`): an AnyHttpUrl made here would end in "/", hence the mapping."""
    return AuthSettings.model_validate(
        {
            "issuer_url": oauth.public_url,
            "resource_server_url": oauth.resource,
            "validate_token_resource": True,
            "client_registration_options": ClientRegistrationOptions(enabled=True),
            "revocation_options": RevocationOptions(enabled=True),
        }
    )


def _oauth_routes(oauth: OAuthServer) -> list[Route]:
    """RFC 8414 metadata, /register (RFC 7591), /authorize, /token, /revoke (the SDK's, three of
    them wrapped or replaced: oauth/endpoints.py); RFC 9728 metadata of /mcp; and our consent page
    and Relatel's callback."""
    auth = _auth_settings(oauth)
    assert auth.resource_server_url is not None
    return [
        *auth_routes(oauth, auth),
        *create_protected_resource_routes(
            resource_url=auth.resource_server_url,
            authorization_servers=[auth.issuer_url],
            resource_name="relatel-mcp",
        ),
        *oauth.routes(),
    ]


def _protector(oauth: OAuthServer | None) -> Callable[[ASGIApp], ASGIApp]:
    if oauth is None:
        return lambda app: app  # BearerAuth guards everything but /healthz and the approval pages
    resource = _auth_settings(oauth).resource_server_url
    assert resource is not None
    metadata = build_resource_metadata_url(resource)
    return lambda app: RequireAuthMiddleware(app, [], metadata)


def _tenant_of(settings: Settings, options: HttpOptions, oauth: OAuthServer | None) -> TenantOf:
    if oauth is not None:

        async def from_grant(ctx: ServerRequestContext) -> Tenant:
            assert ctx.request is not None  # RequireAuthMiddleware let none in without a user
            return await oauth.tenant(ctx.request.scope["user"].access_token)

        return from_grant
    if options.auth != "passthrough":
        return the_tenant(own_tenant(settings))

    async def from_request(ctx: ServerRequestContext) -> Tenant:
        assert ctx.request is not None  # BearerAuth let no request without one through
        credential = _bearer(ctx.request.headers.getlist("authorization"))
        assert credential is not None
        return Tenant(credential, source="client")

    return from_request


def _pages_of(options: HttpOptions) -> Callable[[ServerRequestContext], PagesAt | None]:
    def pages(ctx: ServerRequestContext) -> PagesAt | None:
        if ctx.request is None:
            return None
        return PagesAt(options.public_url or str(ctx.request.base_url))

    return pages


def _transport_security(options: HttpOptions) -> TransportSecuritySettings:
    """The Host and Origin check of /mcp, /sse and the approval pages: loopback, --allowed-hosts and
    the --public-url host (where browsers open the pages); `*` turns it off."""
    if "*" in options.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    public = [urlsplit(options.public_url).netloc] if options.public_url else []
    named = [*options.allowed_hosts, *public]
    hosts = [f"{h}:*" for h in ("127.0.0.1", "localhost", "[::1]")] + named
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in named]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


# ------------------------------------------------------------------------------ credentials


Check = Callable[[str, str], Awaitable[str | None]]  # (credential, client address) -> principal or None


class TooManyChecks(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many unknown credentials; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


def _credential_check(accounts: Accounts, options: HttpOptions) -> Check | None:
    if options.auth == "none":
        return None
    if options.auth == "api-key":
        keys = [key.encode() for key in options.api_keys]

        async def api_key(credential: str, client: str) -> str | None:
            given = credential.encode()
            matches = [hmac.compare_digest(given, key) for key in keys]  # every key, every time
            return f"key:{matches.index(True)}" if any(matches) else None

        return api_key
    return PassthroughVerifier(accounts, per_client=options.checks_per_client, total=options.checks_total)


class PassthroughVerifier:
    """Is this a Relatel token? Asked of Relatel once (the account lookup), then cached.

    Checking an unknown token costs an upstream request, so such checks are bounded: at most
    `per_client` in 10 s from one client address and `total` in 10 s in all. Tokens that were
    valid when last checked are checked again when their cache entry expires, unbounded.
    """

    def __init__(self, accounts: Accounts, *, per_client: int = 20, total: int = 100) -> None:
        self.accounts = accounts
        self.per_client = RateLimiter(per_client / 10, per_client, max_wait=0)
        self.total = RateLimiter(total / 10, total, max_wait=0, tenants=1)

    async def __call__(self, credential: str, client: str) -> str | None:
        tenant = Tenant(credential)

        def limit() -> None:
            if wait := self.per_client.take_now(client) or self.total.take_now("all"):
                raise TooManyChecks(wait)

        return (
            tenant.id if await self.accounts.of(tenant, before_asking_about_new=limit) is not None else None
        )


class BearerAuth:
    """401 with a `WWW-Authenticate` challenge before anything else runs (but /healthz and the
    approval pages, whose unguessable URL is their credential)."""

    def __init__(self, app: ASGIApp, check: Check | None) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.check is None or _public(scope["path"]):
            return await self.app(scope, receive, send)
        given = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"]
        credential = _bearer(given)
        client = (scope.get("client") or ("unknown", 0))[0]
        try:
            principal = await self.check(credential, client) if credential else None
        except TooManyChecks as exc:
            response = _error(429, "too_many_requests", f"{exc}.")
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return await response(scope, receive, send)
        except Unavailable as exc:
            return await _error(503, "unavailable", f"Cannot check the credential now: {exc}")(
                scope, receive, send
            )
        if principal is None:
            # RFC 6750 §3.1: no error attribute when no credential came; invalid_token when one did.
            challenge = 'Bearer realm="relatel-mcp"' + (', error="invalid_token"' if given else "")
            response = _error(401, "unauthorized", "A valid bearer credential is required.")
            response.headers["WWW-Authenticate"] = challenge
            return await response(scope, receive, send)
        # The SDK binds each session to this user and answers 404 to anyone else.
        scope["user"] = AuthenticatedUser(AccessToken(token=principal, client_id=principal, scopes=[]))
        await self.app(scope, receive, send)


_PAGE = re.compile(re.escape(PAGE_PATH) + r"[A-Za-z0-9_-]{1,64}")


def _public(path: str) -> bool:
    return path == "/healthz" or _PAGE.fullmatch(path) is not None


def _bearer(values: list[str]) -> str | None:
    """The credential of the one `Authorization: Bearer` header, if well formed."""
    if len(values) != 1:
        return None
    scheme, _, credential = values[0].partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or len(credential) > 4096 or not _B64TOKEN.fullmatch(credential):
        return None
    return credential


# ------------------------------------------------------------------------------ sessions


class UnambiguousRequests:
    """400 for a request that could be read two ways: two `Authorization` or `Mcp-Session-Id`
    headers, a repeated `session_id`, or an `Mcp-Session-Id` that names another session than the
    query. Whoever reads which copy, it must be the same one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := _ambiguity(scope)):
            return await _error(400, "bad_request", problem)(scope, receive, send)
        await self.app(scope, receive, send)


def _ambiguity(scope: Scope) -> str | None:
    names = Counter(key.lower() for key, _ in scope["headers"])
    if names[b"authorization"] > 1:
        return "More than one Authorization header."
    if names[b"mcp-session-id"] > 1:
        return "More than one Mcp-Session-Id header."
    query = [
        v
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if k == "session_id"
    ]
    if len(query) > 1:
        return "More than one session_id."
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"mcp-session-id"), None)
    if query and header is not None and _canonical(query[0]) != _canonical(header):
        return "The Mcp-Session-Id header and the session_id disagree."
    return None


def _canonical(session_id: str) -> str | None:
    """The session as the SDK's SSE transport routes it: UUID(hex=...)."""
    try:
        return UUID(hex=session_id).hex
    except ValueError:
        return None


class TenantSessionCap:
    """At most `limit` open streamable-HTTP sessions per owner (the credential, or the OAuth client
    and person), so one tenant cannot fill the server's cap for everyone. It counts the SDK's own
    record of who opened which session."""

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager, limit: int) -> None:
        self.app, self.manager, self.limit = app, manager, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = _owner(scope)
        if owner is not None and _opens_session(scope) and self._open(owner) >= self.limit:
            return await _error(503, "too_many_sessions", "Too many open sessions for this credential.")(
                scope, receive, send
            )
        await self.app(scope, receive, send)

    def _open(self, owner: tuple) -> int:
        owners = session_owners(self.manager)  # the SDK's own record (internals.py: no public view)
        return sum(1 for each in owners if tuple(each.values()) == owner)


def _owner(scope: Scope) -> tuple | None:
    """Who a request is, as the SDK binds sessions: (client id, issuer, subject)."""
    user = scope.get("user")
    return tuple(authorization_context(user).values()) if isinstance(user, AuthenticatedUser) else None


def _opens_session(scope: Scope) -> bool:
    headers = {k.lower(): v for k, v in scope["headers"]}
    version = headers.get(b"mcp-protocol-version", b"").decode("latin-1")
    return (
        scope["method"] == "POST"
        and b"mcp-session-id" not in headers
        and (not version or version in HANDSHAKE_PROTOCOL_VERSIONS)
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(options: HttpOptions, url: str) -> str:
    endpoints = f"{url}/mcp and {url}/sse" if options.transport == "http" else f"{url}/sse"
    mode = "stateless" if options.stateless else "stateful"
    return (
        f"relatel-mcp: serving MCP at {endpoints} ({mode}, auth {options.auth}); health at {url}/healthz, "
        f"readiness at {url}/readyz" + (f", metrics at {url}/metrics" if options.metrics_token else "")
    )
