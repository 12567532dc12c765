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
import json
import secrets
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..client import RelatelClient, Tenant, parsed_json
from ..errors import StartUpError, ToolError
from ..pages import page
from ..request import UpstreamRequest
from ..serving import UvicornServer
from ..store import private_directory, private_file
from .relatel import DEFAULT_REDIRECT_URI, RelatelApp, RelatelRefused

KEYRING_SERVICE = "relatel-mcp"


class LoginFailed(StartUpError):
    """The login did not complete; the message says why and what to do. Nothing was stored."""


@dataclass(frozen=True)
class Identity:
    name: str
    employee_id: int
    company_id: int

    def __str__(self) -> str:
        return f"{self.name} (employee {self.employee_id} of company {self.company_id})"


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


# ------------------------------------------------------------------------------ where it is kept


class StoredLogin:
    """The token of the last login: in the OS keyring if there is one, else in a 0600 file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "login.json"

    def save(self, base_url: str, token: str, who: Identity) -> str:
        """Keep it; where it went, for telling the user."""
        private_directory(self.path.parent)
        in_keyring = _keyring_set(base_url, token)
        record: dict[str, Any] = {
            "base_url": base_url,
            "token": None if in_keyring else token,
            "keyring": in_keyring,
            "employee": {"name": who.name, "id": who.employee_id, "company_id": who.company_id},
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        private_file(self.path).write_text(json.dumps(record, indent=1))
        return "the OS keyring" if in_keyring else str(self.path)

    def token(self, base_url: str) -> str | None:
        """The stored token for this base URL (a token is never sent to another one)."""
        record = self._record()
        if record is None or record.get("base_url") != base_url:
            return None
        return _keyring_get(base_url) if record.get("keyring") else record.get("token")

    def remove(self) -> bool:
        record = self._record()
        if record is None:
            return False
        if record.get("keyring"):
            _keyring_delete(str(record.get("base_url")))
        self.path.unlink()
        return True

    def _record(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None


def _keyring() -> Any:
    """The OS keyring, where the optional `keyring` package finds a real one; else None."""
    try:
        import keyring
        from keyring.backends.fail import Keyring as NoKeyring
    except ImportError:
        return None
    backend = keyring.get_keyring()
    return None if isinstance(backend, NoKeyring) or getattr(backend, "priority", 0) < 1 else keyring


def _keyring_set(base_url: str, token: str) -> bool:
    ring = _keyring()
    if ring is None:
        return False
    try:
        ring.set_password(KEYRING_SERVICE, base_url, token)
    except Exception:  # a locked or broken keyring: the file it is
        return False
    return True


def _keyring_get(base_url: str) -> str | None:
    ring = _keyring()
    return ring.get_password(KEYRING_SERVICE, base_url) if ring is not None else None


def _keyring_delete(base_url: str) -> None:
    ring = _keyring()
    if ring is not None:
        with contextlib.suppress(Exception):
            ring.delete_password(KEYRING_SERVICE, base_url)
