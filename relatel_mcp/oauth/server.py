"""`serve --transport http --auth oauth`: relatel-mcp as the OAuth 2.1 authorization server of its
MCP clients (the MCP authorization spec), and an OAuth client of Relatel.

    MCP client ──/register, /authorize (PKCE S256)──▶ relatel-mcp ──consent page──▶ the user
    the user ──allow──▶ Relatel's authorize page ──code──▶ /oauth/callback (relatel-mcp exchanges it)
    relatel-mcp ──its own code──▶ MCP client ──/token──▶ relatel-mcp's access and refresh tokens

The SDK's handlers serve the metadata (RFC 8414, RFC 9728), registration (RFC 7591), /authorize
and /token and check PKCE (endpoints.py wraps some and serves /revoke); this module is their
provider, plus the two pages of its own (our consent, Relatel's callback). Its access tokens live an hour, its refresh tokens rotate
(using one twice ends the grant, as does using an authorization code twice), and every secret of
the flow, from the consent request to the tokens, is bound to this server's MCP resource
(RFC 8707): another server sharing the store (another public URL) takes none of them. None goes
upstream: each grant holds the user's Relatel token, encrypted at rest (AES-GCM, key from
RELATEL_MCP_SECRET), which never goes to a client. Every secret of the flow is kept only as a
SHA-256 digest. When Relatel refuses the token (the user destroyed it), the grant ends and the
client gets 401, and logs in again. Registration is bounded and redirect URIs are checked
(clients.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import ToolError
from ..core.sanitize import quoted
from ..store import Store
from ..upstream.accounts import Accounts
from ..upstream.client import Tenant
from ..web.pages import page
from .clients import RegistrationLimits, RegistryFull, check_registration, redirect_uri_problem
from .relatel import RelatelApp, RelatelRefused

ACCESS_SECONDS = 3600
REFRESH_SECONDS = 30 * 86_400
CODE_SECONDS = 300
CONSENT_SECONDS = 600
CALLBACK_PATH = "/oauth/callback"
CONSENT_PATH = "/oauth/consent"
_COOKIE = "relatel_mcp_consent"
_LOGIN_COOKIE = "relatel_mcp_login"  # the browser that allowed, back at the callback
_GONE = "This request has expired or was already answered; start again from your MCP client."


def hashed(secret: str) -> str:
    """How a secret of the flow is kept: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Vault:
    """Relatel tokens at rest: AES-GCM under a key derived from the server's secret."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(_key(secret, b"relatel-mcp oauth relatel tokens"))

    def seal(self, token: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, token.encode(), b"relatel-token")).decode()

    def open(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], b"relatel-token").decode()


class ConsentNonces:
    """The consent form's nonce: `<expiry>.<HMAC of the pending request, the browser's cookie and
    the expiry>`, under a key derived from the server's secret. Only the server can make one, and
    it answers for that request only, with that cookie only, until it expires; the request itself
    is answered once. A value an attacker picks (and plants as the cookie too) is refused."""

    def __init__(self, secret: bytes) -> None:
        self._key = _key(secret, b"relatel-mcp oauth consent nonces")

    def issue(self, request_id: str, browser: str) -> str:
        expires = int(time.time()) + CONSENT_SECONDS
        return f"{expires}.{self._mac(request_id, browser, expires)}"

    def valid(self, nonce: str, request_id: str, browser: str) -> bool:
        expires, _, mac = nonce.partition(".")
        if not browser or not re.fullmatch(r"[0-9]{1,12}", expires) or int(expires) < time.time():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(request_id, browser, int(expires)).encode())

    def _mac(self, request_id: str, browser: str, expires: int) -> str:
        message = json.dumps([request_id, browser, expires]).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


class OAuthServer:
    """The provider of the SDK's auth handlers, our two pages, and each request's Relatel tenant."""

    def __init__(self, store: Store, accounts: Accounts, relatel: RelatelApp, public_url: str, secret: bytes,
                 registrations: RegistrationLimits | None = None) -> None:  # fmt: skip
        self.store, self.accounts, self.relatel = store, accounts, relatel
        self.vault, self.nonces = Vault(secret), ConsentNonces(secret)
        self.registrations = registrations or RegistrationLimits()
        self.public_url = public_url.rstrip("/")
        self.resource = f"{self.public_url}/mcp"
        self.origin = _origin(self.public_url)
        # __Host- cookies cannot be set by a sibling subdomain (they need Secure, so https only).
        self._secure = self.public_url.startswith("https://")
        prefix = "__Host-" if self._secure else ""
        self._consent_cookie, self._login_cookie = prefix + _COOKIE, prefix + _LOGIN_COOKIE

    # ------------------------------------------------------------------ clients (RFC 7591)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        """A registered client that has not expired; none whose redirect URIs would not be taken
        today (registered before they were checked)."""
        info = await self.store.oauth_client(client_id, time.time() - self.registrations.waiting_seconds)
        client = OAuthClientInformationFull.model_validate_json(info) if info else None
        if client is None or any(redirect_uri_problem(str(uri)) for uri in client.redirect_uris or ()):
            return None
        return client

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """RegistrationError for metadata we refuse; RegistryFull when too many wait for a grant."""
        assert client_info.client_id is not None  # the SDK's handler assigns it
        check_registration(client_info)
        limits = self.registrations
        if not await self.store.save_oauth_client(client_info.client_id, client_info.model_dump_json(),
                                                  time.time() - limits.waiting_seconds, limits.waiting):  # fmt: skip
            raise RegistryFull

    # ------------------------------------------------------------------ authorization

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """After the SDK checked the client, redirect URI and PKCE parameters: our consent page."""
        if params.resource not in (None, self.resource):
            raise AuthorizeError("invalid_request", f"this server issues tokens for {self.resource} only")
        request_id = secrets.token_urlsafe(32)
        pending = {
            "client_id": client.client_id,
            "redirect_uri": str(params.redirect_uri),
            "explicit": params.redirect_uri_provided_explicitly,
            "code_challenge": params.code_challenge,
            "state": params.state,
            "scopes": params.scopes or [],
            "resource": self.resource,
        }
        await self.store.put_secret(
            "consent", hashed(request_id), json.dumps(pending), time.time() + CONSENT_SECONDS
        )
        return f"{self.public_url}{CONSENT_PATH}?request={request_id}"

    async def consent(self, request: Request) -> Response:
        """Our page: which client asks, where the browser goes back to; Allow sends the user on to
        Relatel, Deny back to the client with access_denied.

        The answer must come from our page, in the browser it was shown in: the browser must say
        the form was posted from this server's origin (Sec-Fetch-Site, Origin), and the form's
        nonce must be the one the server made for this request and the page's SameSite=Strict
        cookie. So a form another site posts in the user's browser (to allow an attacker's
        request) is refused, even from a sibling subdomain or another port on loopback, which
        share the site and can plant cookies."""
        form = await request.form() if request.method == "POST" else {}
        request_id = str(request.query_params.get("request") or form.get("request") or "")
        if request.method == "GET":
            return await self._consent_page(request_id)
        cookie, nonce = request.cookies.get(self._consent_cookie, ""), str(form.get("nonce", ""))
        if not _from_origin(request, self.origin) or not self.nonces.valid(nonce, request_id, cookie):
            return _page(403, "Not from this page", "<p>Answer on the page relatel-mcp showed you.</p>")
        taken = await self.store.take_secret("consent", hashed(request_id))
        pending = json.loads(taken[0]) if taken else {}
        if not self._ours(pending):
            return _page(400, "Nothing to approve", f"<p>{_GONE}</p>")
        if form.get("decision") != "allow":
            return _back(pending, error="access_denied")
        relatel_state, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        bound = json.dumps({**pending, "browser": hashed(browser)})
        await self.store.put_secret("relatel", hashed(relatel_state), bound, time.time() + CONSENT_SECONDS)
        onward = RedirectResponse(
            self.relatel.authorize_url(f"{self.public_url}{CALLBACK_PATH}", relatel_state), status_code=302
        )
        # Lax, not Strict: the browser comes back to the callback from Relatel's site.
        self._set_cookie(onward, self._login_cookie, browser, CALLBACK_PATH, "lax")
        return onward

    async def _consent_page(self, request_id: str) -> Response:
        found = await self.store.secret("consent", hashed(request_id))
        pending = json.loads(found[0]) if found and not found[2] else {}
        client = await self.get_client(pending["client_id"]) if self._ours(pending) else None
        if client is None:  # expired, or another server's request
            return _page(400, "Nothing to approve", f"<p>{_GONE}</p>")
        browser = secrets.token_urlsafe(24)
        nonce = self.nonces.issue(request_id, browser)
        scheme = urlsplit(pending["redirect_uri"]).scheme  # a native app's, for Deny's redirect
        extra = "" if scheme in ("http", "https") else f" {scheme}:"
        page = _page(200, "Allow access to your Relatel account?", _consent_form(request_id, nonce, pending, client),
                     form_action=f"'self' http: https:{extra}")  # fmt: skip
        # Where a browser sends no Sec-Fetch-Site, its form's post must carry its Origin (which
        # is "null" under no-referrer); no other origin gets a referrer.
        page.headers["Referrer-Policy"] = "same-origin"
        self._set_cookie(page, self._consent_cookie, browser, CONSENT_PATH, "strict")
        return page

    def _set_cookie(self, response: Response, name: str, value: str, path: str,
                    samesite: Literal["lax", "strict"]) -> None:  # fmt: skip
        """HttpOnly, for CONSENT_SECONDS; on https Secure and __Host- (so for the whole origin)."""
        response.set_cookie(name, value, max_age=CONSENT_SECONDS, path="/" if self._secure else path,
                            httponly=True, samesite=samesite, secure=self._secure)  # fmt: skip

    def _ours(self, data: dict[str, Any]) -> bool:
        """Was this secret issued for this server's resource (not another server's sharing the
        store, nor from before secrets were bound to one)?"""
        return data.get("resource") == self.resource

    async def callback(self, request: Request) -> Response:
        """Relatel sends the browser back here: exchange its code, keep the grant, hand the client
        our own authorization code.

        Only in the browser that allowed on our consent page (its cookie, set with the redirect to
        Relatel): otherwise whoever consented for their own client could send the Relatel link to
        someone else and receive a code for that person's account (a confused deputy)."""
        taken = await self.store.take_secret("relatel", hashed(request.query_params.get("state", "")))
        pending = json.loads(taken[0]) if taken else {}
        if not self._ours(pending):
            return _page(400, "Unknown or expired login", "<p>Start again from your MCP client.</p>")
        browser = pending.pop("browser", "")  # none (a login begun before this check): refused
        if not secrets.compare_digest(hashed(request.cookies.get(self._login_cookie, "")), browser):
            return _page(
                403,
                "Not the browser that allowed this",
                "<p>This login was started in another browser. Nothing was granted; start again "
                "from your MCP client, in the browser you use with it.</p>",
            )
        code = request.query_params.get("code")
        if not code:
            return _back(pending, error="access_denied")
        try:
            relatel_token = await self.relatel.exchange(code, f"{self.public_url}{CALLBACK_PATH}")
        except RelatelRefused:
            return _back(pending, error="server_error")
        account = await self.accounts.of(Tenant(relatel_token))
        if account is None:
            return _back(pending, error="access_denied")
        grant_id = secrets.token_urlsafe(16)
        await self.store.save_grant(grant_id, pending["client_id"], account, self.vault.seal(relatel_token))
        ours = secrets.token_urlsafe(32)
        expires = time.time() + CODE_SECONDS
        issued = {**pending, "account": account, "expires": expires}
        await self.store.put_secret("code", hashed(ours), json.dumps(issued), expires, grant_id)
        return _back(pending, code=ours)

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> AuthorizationCode | None:  # fmt: skip
        found = await self._alive("code", authorization_code)
        if found is None:
            return None
        data, _ = found
        return AuthorizationCode(
            code=authorization_code,
            scopes=data["scopes"],
            expires_at=data["expires"],
            client_id=data["client_id"],
            code_challenge=data["code_challenge"],
            redirect_uri=data["redirect_uri"],
            redirect_uri_provided_explicitly=data["explicit"],
            resource=data["resource"],
            subject=data["account"],
        )

    async def exchange_authorization_code(self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode) -> OAuthToken:  # fmt: skip
        taken = await self.store.take_secret("code", hashed(authorization_code.code))
        if taken is None or taken[1] is None:
            raise TokenError("invalid_grant", "authorization code already used")
        return await self._issue(taken[1], json.loads(taken[0]))

    # ------------------------------------------------------------------ tokens

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:  # fmt: skip
        found = await self._alive("refresh", refresh_token)
        if found is None:
            return None
        data, _ = found
        return RefreshToken(token=refresh_token, client_id=data["client_id"], scopes=data["scopes"],
                            resource=data["resource"], subject=data["account"])  # fmt: skip

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]) -> OAuthToken:  # fmt: skip
        taken = await self.store.take_secret("refresh", hashed(refresh_token.token))  # it rotates
        if taken is None or taken[1] is None or await self.store.grant(taken[1]) is None:
            raise TokenError("invalid_grant", "refresh token already used or revoked")
        return await self._issue(taken[1], {**json.loads(taken[0]), "scopes": scopes})

    async def load_access_token(self, token: str) -> AccessToken | None:
        """The bearer check of every MCP request: a live token of a live grant whose Relatel token
        Relatel still accepts (asked at most every few minutes; a refusal ends the grant)."""
        found = await self._alive("access", token)
        if found is None:
            return None
        data, grant_id = found
        grant = await self.store.grant(grant_id)
        if grant is None:
            return None
        if await self.accounts.of(Tenant(self.vault.open(grant[2]))) is None:
            await self.store.revoke_grant(grant_id)
            return None
        return AccessToken(token=token, client_id=data["client_id"], scopes=data["scopes"],
                           expires_at=int(data["expires"]), resource=data["resource"], subject=data["account"],
                           claims={"grant": grant_id})  # fmt: skip

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        """RFC 7009: revoking either token ends the grant and every token issued under it."""
        await self.revoke(token.token, token.client_id)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: IdentityAssertionParams) -> OAuthToken:  # fmt: skip
        """SEP-990's identity-assertion (jwt-bearer) grant: not offered (the SDK neither advertises
        nor accepts it unless told to, and we never do), so refused like any other unknown grant."""
        raise TokenError("unsupported_grant_type", "This server does not accept identity assertions.")

    async def revoke(self, token: str, client_id: str) -> None:
        """For an authenticated client, /revoke: end the grant of its own access or refresh token
        (found without asking Relatel); another client's token, or an unknown one, is left alone."""
        for kind in ("access", "refresh"):
            found = await self._alive(kind, token)
            if found is not None and found[0]["client_id"] == client_id:
                await self.store.revoke_grant(found[1])
                return

    async def tenant(self, access_token: AccessToken) -> Tenant:
        """Whose Relatel account an authenticated request acts on (the grant's own token)."""
        grant = await self.store.grant(str((access_token.claims or {}).get("grant")))
        if grant is None:
            raise ToolError("unauthorized", "This login has ended; log in again from your MCP client.", 401)
        return Tenant(self.vault.open(grant[2]), source="oauth")

    # ------------------------------------------------------------------ helpers

    async def _alive(self, kind: str, secret: str) -> tuple[dict[str, Any], str] | None:
        """A live, unused secret of this kind, issued for this server, and its grant. A used code or
        refresh token shown again means it leaked: the grant ends (OAuth 2.1 §4.1.3, §4.3.1)."""
        found = await self.store.secret(kind, hashed(secret))
        if found is None or found[1] is None:
            return None
        data, grant_id, used = json.loads(found[0]), found[1], found[2]
        if not self._ours(data):
            return None
        if used:
            if kind in ("code", "refresh"):
                await self.store.revoke_grant(grant_id)
            return None
        return data, grant_id

    async def _issue(self, grant_id: str, data: dict[str, Any]) -> OAuthToken:
        if await self.store.grant(grant_id) is None:
            raise TokenError("invalid_grant", "the grant has ended")
        access, refresh = "rmcp_at_" + secrets.token_urlsafe(32), "rmcp_rt_" + secrets.token_urlsafe(32)
        now = time.time()
        kept = {k: data[k] for k in ("client_id", "scopes", "account", "resource")}
        await self.store.put_secret("access", hashed(access), json.dumps({**kept, "expires": now + ACCESS_SECONDS}),
                                    now + ACCESS_SECONDS, grant_id)  # fmt: skip
        await self.store.put_secret(
            "refresh", hashed(refresh), json.dumps(kept), now + REFRESH_SECONDS, grant_id
        )
        return OAuthToken(access_token=access, token_type="Bearer", expires_in=ACCESS_SECONDS,
                          refresh_token=refresh, scope=" ".join(data["scopes"]) or None)  # fmt: skip

    def routes(self) -> list[Route]:
        return [
            Route(CONSENT_PATH, self.consent, methods=["GET", "POST"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
        ]


def _origin(url: str) -> str:
    """An http(s) URL's origin as a browser's Origin header spells it."""
    parts = urlsplit(url)
    default = {"http": ":80", "https": ":443"}.get(parts.scheme.lower(), "")
    return f"{parts.scheme}://{parts.netloc}".lower().removesuffix(default)


def _from_origin(request: Request, origin: str) -> bool:
    """Did the browser post this from a page of `origin`? Browsers say so in Sec-Fetch-Site (which
    no page can set), older ones in Origin; a post with neither did not come from a browser's form."""
    site, sent = request.headers.get("sec-fetch-site"), request.headers.get("origin")
    if site is not None:
        return site == "same-origin"
    return sent is not None and sent.lower() == origin


def _back(pending: dict[str, Any], **params: str) -> Response:
    """To the MCP client's registered redirect URI, with its state."""
    url = construct_redirect_uri(pending["redirect_uri"], state=pending.get("state"), **params)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _consent_form(
    request_id: str, nonce: str, pending: dict[str, Any], client: OAuthClientInformationFull
) -> str:
    name = quoted(client.client_name or "(no name given)", 80)
    return (
        f"<p>An application that calls itself {html.escape(name)} (client id "
        f"<code>{html.escape(pending['client_id'])}</code>) asks to use your Relatel account through "
        "relatel-mcp: to read and change your company's data with its tools. Calls, SMS, orders and "
        "deletes still ask you each time.</p>"
        f"<p>After you allow it, you log in at Relatel, and your browser is then sent back to:<br>"
        f"<code>{html.escape(pending['redirect_uri'])}</code></p>"
        "<p>Allow it only if you started this from that application.</p>"
        f'<form method="post"><input type="hidden" name="request" value="{html.escape(request_id)}">'
        f'<input type="hidden" name="nonce" value="{html.escape(nonce)}">'
        '<button name="decision" value="allow">Allow</button> '
        '<button name="decision" value="deny">Deny</button></form>'
    )


def _page(status: int, title: str, body: str, form_action: str = "'self' http: https:") -> HTMLResponse:
    # Its forms lead on to Relatel's page, and back to the MCP client's redirect URI.
    return page(status, title, body, form_action=form_action)
