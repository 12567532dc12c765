"""`relatel-mcp login`, `whoami` and `logout`: Relatel's OAuth flow on this machine.

`login` opens the authorization URL in a browser (or, with `--no-browser`, prints it on a line of
its own), waits on a loopback redirect URI (RFC 8252; default http://127.0.0.1:8765/callback) for
Relatel to send the browser back, checks that the answer carries this login's `state` (anything
else is refused, and nothing is stored), exchanges the code, and stores the token: in the OS
keyring where one is available, else in `login.json` in the state directory (0600). The stdio
server uses it when RELATEL_TOKEN is unset, for the base URL it was issued for only.
"""

from __future__ import annotations

import contextlib
import secrets
import webbrowser
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..core.errors import StartUpError, ToolError
from ..core.request import UpstreamRequest, parsed_json
from ..store.login import Identity
from ..upstream.client import RelatelClient, Tenant
from ..web.pages import page
from ..web.serving import UvicornServer
from .relatel import DEFAULT_REDIRECT_URI, RelatelApp, RelatelRefused


class LoginFailed(StartUpError):
    """The login did not complete; the message says why and what to do. Nothing was stored."""


# ------------------------------------------------------------------------------ the flow


async def login(
    app: RelatelApp,
    redirect_uri: str,
    *,
    show: Callable[[str], None],
    open_browser: bool = True,
    timeout: float = 300.0,
) -> str:
    """The access token a user granted in their browser."""
    host, port, path = _loopback(redirect_uri)
    state = secrets.token_urlsafe(24)
    answer: dict[str, str] = {}
    answered = anyio.Event()

    async def callback(request: Request) -> Response:
        if answered.is_set():
            return _page(409, "This login was already answered.")
        answer.update(request.query_params)
        answered.set()
        if not secrets.compare_digest(answer.get("state", ""), state):
            return _page(400, "This answer is not for the login in progress; nothing was stored.")
        return _page(200, "Relatel answered. You can close this tab and return to the terminal.")

    server = UvicornServer(Starlette(routes=[Route(path, callback)]), host, port)
    url = app.authorize_url(redirect_uri, state)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        await server.wait_started()
        show(url)
        if open_browser:
            with contextlib.suppress(webbrowser.Error):
                webbrowser.open(url)
        with anyio.move_on_after(timeout):
            await answered.wait()
        server.stop()
    if not answered.is_set():
        raise LoginFailed(f"no answer from the browser within {timeout:g} s; run relatel-mcp login again")
    if not secrets.compare_digest(answer.get("state", ""), state):
        raise LoginFailed(
            "the answer did not carry this login's state (a forged or stale redirect); nothing was stored"
        )
    if "code" not in answer:
        raise LoginFailed(f"Relatel did not grant access ({answer.get('error', 'no code')})")
    try:
        return await app.exchange(answer["code"], redirect_uri)
    except RelatelRefused as exc:
        raise LoginFailed(str(exc)) from None


def _loopback(redirect_uri: str) -> tuple[str, int, str]:
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        raise LoginFailed(
            f"--redirect-uri must be a loopback http URL with a port, like {DEFAULT_REDIRECT_URI}, not {redirect_uri!r}"
        )
    return ("127.0.0.1" if parts.hostname == "localhost" else parts.hostname), parts.port, parts.path or "/"


def _page(status: int, text: str) -> HTMLResponse:
    return page(status, "relatel-mcp login", f"<p>{text}</p>")


async def identify(base_url: str, token: str) -> Identity | None:
    """Whose the token is (GET /api/v2/employee, through the server's own client); None when
    Relatel refuses it."""
    client = RelatelClient(base_url)
    try:
        response = await client.send(
            UpstreamRequest("GET", "/api/v2/employee"), Tenant(token), idempotent=True, expect_json=True
        )
    except ToolError as exc:
        raise LoginFailed(f"could not reach Relatel at {base_url} ({exc.message})") from None
    finally:
        await client.aclose()
    if response.status_code in (401, 403):
        return None
    try:
        employee = parsed_json(response)["employee"]
        return Identity(str(employee["name"]), int(employee["id"]), int(employee["company_id"]))
    except (ValueError, KeyError, TypeError):
        raise LoginFailed(
            f"Relatel's answer (HTTP {response.status_code}) did not say whose the token is"
        ) from None
