"""Relatel's OAuth 2.0 authorization-code flow, as the sandbox speaks it.

    GET  /api/v2/authorize?client_id&response_type=code&redirect_uri[&state]   a login-and-consent
         page: one plain HTML form to pick a demo employee (the admin preselected)
    POST /api/v2/authorize   the form: decision=allow redirects to redirect_uri?code&state,
         decision=deny to redirect_uri?error=access_denied&state
    POST /api/v2/token       client_id, client_secret, grant_type=authorization_code, redirect_uri
         and code, in the query string (as Relatel's docs show) or a form body: {"access_token"}
    DELETE /_sandbox/oauth/tokens[?employee_id=N]   destroys tokens, as a user can on Relatel

One registered app: client id `relatel-mcp-sandbox`, secret `sandbox-secret`. Its redirect URIs:
any http://127.0.0.1:<port>/… or http://localhost:<port>/… (loopback, RFC 8252), and those given
with `relatel-mcp sandbox --oauth-redirect-uri`. A code is single-use, lives 10 minutes and is
bound to the app, the redirect URI and the employee; an unknown app or redirect URI gets an error
page, never a redirect (which would hand a code to whoever asked).
"""

from __future__ import annotations

import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from relatel_mcp.sandbox.auth import DEMO_TOKENS, IDENTITIES
from relatel_mcp.sandbox.state import SandboxState
from relatel_mcp.web.pages import page

CLIENT_ID = "relatel-mcp-sandbox"
CLIENT_SECRET = "sandbox-secret"
CODE_SECONDS = 600


def redirect_allowed(state: SandboxState, uri: str) -> bool:
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and parts.port
    return bool(loopback) or uri in state.oauth_redirect_uris


async def authorize(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    fields: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        fields.update(await request.form())
    client_id, redirect_uri = fields.get("client_id"), str(fields.get("redirect_uri") or "")
    if client_id != CLIENT_ID or fields.get("response_type") != "code":
        return _page(400, "Unknown application", "<p>The client_id or response_type is not valid.</p>")
    if not redirect_allowed(state, redirect_uri):
        return _page(
            400, "Redirect URI not registered", "<p>This redirect URI is not registered for the app.</p>"
        )
    if request.method == "GET":
        return _page(200, "Relatel (sandbox): allow access?", _consent_form(fields))
    back: dict[str, str] = {"state": fields["state"]} if fields.get("state") else {}
    token = str(fields.get("employee", ""))
    if fields.get("decision") != "allow" or token not in IDENTITIES:
        return _redirect(redirect_uri, {"error": "access_denied", **back})
    code = secrets.token_urlsafe(24)
    state.oauth_codes[code] = {
        "redirect_uri": redirect_uri,
        "identity": IDENTITIES[token],
        "expires": time.time() + CODE_SECONDS,
    }
    return _redirect(redirect_uri, {"code": code, **back})


async def token(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    fields: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields.update(await request.form())
    if fields.get("client_id") != CLIENT_ID or not secrets.compare_digest(
        str(fields.get("client_secret", "")), CLIENT_SECRET
    ):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    if fields.get("grant_type") != "authorization_code":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    grant = state.oauth_codes.pop(str(fields.get("code", "")), None)  # single use, used or not
    if grant is None or grant["expires"] < time.time() or grant["redirect_uri"] != fields.get("redirect_uri"):
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    access_token = "sandbox-oauth-" + secrets.token_urlsafe(24)
    state.oauth_tokens[access_token] = grant["identity"]
    return JSONResponse({"access_token": access_token}, headers={"Cache-Control": "no-store"})


def destroy_tokens(request: Request, state: SandboxState) -> Any:
    """Destroy issued tokens: all, or one employee's (`?employee_id=N`)."""
    employee = request.query_params.get("employee_id")
    doomed = [t for t, (_, e) in state.oauth_tokens.items() if employee is None or str(e) == employee]
    for issued in doomed:
        del state.oauth_tokens[issued]
    return {"destroyed": len(doomed)}


def _consent_form(fields: dict[str, Any]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(str(fields.get(name, "")))}">'
        for name in ("client_id", "redirect_uri", "response_type", "state")
    )
    options = "".join(
        f'<label><input type="radio" name="employee" value="{token}"{" checked" if token == "sandbox-admin" else ""}> '
        f"{html.escape(who)}</label><br>"
        for token, who in DEMO_TOKENS.items()
    )
    return (
        f"<p><b>{html.escape(str(fields['client_id']))}</b> wants access to your Relatel account. "
        f"You will be sent back to <code>{html.escape(str(fields['redirect_uri']))}</code>.</p>"
        f'<form method="post">{hidden}<p>Log in as (a demo employee):</p>{options}'
        '<p><button name="decision" value="allow">Allow</button> '
        '<button name="decision" value="deny">Deny</button></p></form>'
    )


def _page(status: int, title: str, body: str) -> HTMLResponse:
    return page(status, title, body, form_action="'self' http: https:")


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(
        f"{uri}{joiner}{urlencode(params)}", status_code=302, headers={"Cache-Control": "no-store"}
    )
