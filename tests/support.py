"""Connecting real MCP clients to the server, which talks HTTP to the sandbox on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from relatel_mcp.app import assemble
from relatel_mcp.core import catalog
from relatel_mcp.front.server import build_server
from relatel_mcp.front.transports import HttpOptions, http_app
from relatel_mcp.functions.toolkit import Toolkit
from relatel_mcp.policy import Policy
from relatel_mcp.settings import Settings
from relatel_mcp.web.serving import UvicornServer

from .hygiene import HYGIENE, HYGIENE_TOKEN, STATE_DIRS
from .scratch import SCRATCH
from .stores import STORES

MODES = ["legacy", "auto"]
EXE = str(Path(sys.executable).with_name("relatel-mcp"))  # the installed command, run as a subprocess
ALLOW = Policy(costly="allow", destructive="allow")
INITIALIZE = {  # a 2025-11-25 client's first request, as raw JSON-RPC
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
}  # no confirmation: for tests of the requests themselves


# ------------------------------------------------------------------------------ the catalogue, counted
# Tool counts in tests derive from here, never by hand: a new operation changes them all at once.

ALL = catalog.load()  # every operation, one tool each, in the catalogue's order


def offered_names(*lacking: str, human: bool = True) -> frozenset[str]:
    """The tools a client is offered under the default policy, as relatel_mcp.front.server.offered
    decides: a gated (costly or destructive) tool only where the client can ask its user (`human`:
    MCP elicitation, an app's approve), and none that requires what the account is `lacking`
    ("admin", "switch", "switch_premium", "m2m": access.py)."""
    return frozenset(op.name for op in ALL if (human or not op.gated) and not set(op.requires) & set(lacking))


def offered_count(*lacking: str, human: bool = True) -> int:
    """How many tools `offered_names` lists."""
    return len(offered_names(*lacking, human=human))


TOOL_COUNT = len(ALL)  # every tool: listed to a client that can ask its user, or with --all-tools
GATED_COUNT = sum(op.gated for op in ALL)  # costly or destructive: a human's yes by default
COUNT_WITHOUT_HUMAN = offered_count(human=False)  # to a client that cannot ask its user


def settings_for(base_url: str, *, token: str | None = HYGIENE_TOKEN, policy: Policy | None = None,
                 state_dir: Path | None = None, **options: Any) -> Settings:  # fmt: skip
    """The server's settings; its token is recognisable, so that tests/hygiene.py can find leaks."""
    state_dir = state_dir or SCRATCH.new("state-")
    STATE_DIRS.append(state_dir)
    options.setdefault("store", STORES.url_for(state_dir))
    return Settings(token=token, base_url=base_url, policy=policy or Policy(), state_dir=state_dir, **options)


@asynccontextmanager
async def connect(
    base_url: str,
    *,
    mode: str = "auto",
    token: str = HYGIENE_TOKEN,
    policy: Policy | None = None,
    state_dir: Path | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """An MCP client session with a fresh server in this process (both protocol eras via `mode`).

    `client_options` go to mcp.Client (e.g. elicitation_callback), or to Settings where they name
    one of its fields (timeouts, retries, rate limits, max_result_bytes).
    """
    names = {f.name for f in fields(Settings)}
    options = {k: client_options.pop(k) for k in list(client_options) if k in names}
    config = settings_for(base_url, token=token, policy=policy, state_dir=state_dir, **options)
    async with (
        assemble(config) as app,
        Client(build_server(app), mode=mode, **client_options) as session,
    ):
        yield session


def toolkit_for(
    base_url: str, approve: Any = None, *, policy: Policy | None = None, **settings: Any
) -> Toolkit:
    """A Toolkit with the server's settings, against the sandbox (see `settings_for`)."""
    return Toolkit(settings_for(base_url, policy=policy, **settings), approve=approve)


async def decisions(toolkit: Toolkit) -> list[tuple[str, str | None]]:
    """The toolkit's audit records, oldest first, as (decision, channel): read the way an operator's
    MCP client reads them (`relatel://audit`), from the same state directory and account."""
    settings = toolkit.settings
    async with connect(settings.base_url, state_dir=settings.state_dir) as session:
        return [(r["decision"], r["channel"]) for r in reversed(await audit_log(session))]


class Human:
    """An app's `approve`: records every confirmation it is shown and answers `answer`."""

    def __init__(self, answer: Any = True) -> None:
        self.answer = answer
        self.asked: list[Any] = []

    def __call__(self, confirmation: Any) -> Any:
        self.asked.append(confirmation)
        return self.answer


@contextmanager
def serve_http(settings: Settings, options: HttpOptions) -> Iterator[str]:
    """The HTTP transports on a real loopback socket, in a thread with its own event loop."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with assemble(settings, api_keys=options.api_keys, metrics_token=options.metrics_token) as app:
            server = UvicornServer(None, options.host, 0, limits=options.limits, lifespan="on")
            bound = options
            if options.auth == "oauth" and options.public_url is None:  # the server's own address
                bound = replace(options, public_url=server.url)
            server.app = http_app(app, bound)
            holder["server"] = server
            ready.set()
            await server.serve()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(10)
    server = holder["server"]
    assert server.started.wait(10)
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(10)


def env(**extra: str) -> dict[str, str]:
    """The environment of a `relatel-mcp` subprocess: this one's, less every RELATEL setting, with
    a state directory of its own (never the developer's ~/.local/state/relatel-mcp): a new one
    under XDG_STATE_HOME, unless `extra` gives HOME or XDG_STATE_HOME to decide it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELATEL") and k != "XDG_STATE_HOME"}
    if not {"HOME", "XDG_STATE_HOME"} & extra.keys():
        home = SCRATCH.new("state-home-")
        base["XDG_STATE_HOME"] = str(home)
        STATE_DIRS.append(home / "relatel-mcp")  # its audit is scanned too
    return {**base, **extra}


def run(command: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` with the output as text, its stderr scanned for credentials
    (tests/hygiene.py)."""
    done = subprocess.run(command, capture_output=True, text=True, **options)
    HYGIENE.scan_stderr(" ".join(map(str, command[:2])), done.stderr)
    return done


@asynccontextmanager
async def stdio(params: StdioServerParameters, said: list[str] | None = None) -> AsyncIterator[Any]:
    """A stdio server's transport, as `stdio_client`, its stderr scanned for credentials when it
    stops (conftest.py has mcp.Client use this for every StdioServerParameters). The stderr goes
    to `said`, or else to this process's stderr, where pytest shows it with a failure."""
    with tempfile.TemporaryFile("w+") as errlog:
        try:
            async with stdio_client(params, errlog=errlog) as streams:
                yield streams
        finally:
            errlog.seek(0)
            logged = errlog.read()
            HYGIENE.scan_stderr(" ".join([params.command, *params.args]), logged)
            if said is None:
                sys.stderr.write(logged)
            else:
                said.append(logged)


def http_transport(url: str, bearer: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=30))


def sse_transport(url: str, bearer: str | None = None) -> Any:
    return sse_client(f"{url}/sse", headers={"Authorization": f"Bearer {bearer}"} if bearer else None)


def error_of(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    return result.structured_content["error"]


def wire(result: types.CallToolResult) -> str:
    """Everything a client receives for a result, as one string (for token-hygiene checks)."""
    return json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False)


# ------------------------------------------------------------------------------ answering questions

Step = Callable[[], Awaitable[Any]] | None  # something to do while a question is open


def answering(
    action: str = "accept", *, confirm: bool = True, delay: float = 0.0, seen: list[str] | None = None,
    during: Step = None,
) -> Any:  # fmt: skip
    """An elicitation callback that answers a form as a human would (after `during`, if given)."""

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams), "expected a form"
        if seen is not None:
            seen.append(params.message)
        if during is not None:
            await during()
        await anyio.sleep(delay)
        content = {"confirm": confirm} if action == "accept" else None
        return types.ElicitResult(action=action, content=content)

    return callback


def approving(
    decision: str | None = "approve", *, action: str = "accept", pages: list[dict[str, Any]] | None = None,
    during: Step = None,
) -> Any:  # fmt: skip
    """An elicitation callback for URL mode, as a human with a browser: it opens the page the server
    sent, reads it, runs `during`, clicks `decision` (None: never), and tells the client `action`."""

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams), "expected a URL"
        async with httpx2.AsyncClient(timeout=10) as browser:
            page = await browser.get(params.url)
            if during is not None:
                await during()
            clicked = None
            if decision is not None:
                clicked = await browser.post(params.url, data={"decision": decision})
        if pages is not None:
            pages.append({"url": params.url, "status": page.status_code, "html": page.text,
                          "headers": dict(page.headers), "clicked": clicked and clicked.status_code})  # fmt: skip
        return types.ElicitResult(action=action)

    return callback


ATTACKER = "https://attacker.example"


def tried_by_other_sites(
    decision: str, seen: dict[str, int], *, origins: tuple[str, ...] = (ATTACKER,)
) -> Any:
    """An elicitation callback for URL mode in which other sites try the page before the human
    clicks `decision` there: one whose name was rebound to the page's address (DNS rebinding: its
    Host) reads it and posts Approve, and each of `origins` posts Approve (a cross-site form). Then
    the human reads the page and posts, as a browser does, from the page's own origin. `seen` gets
    each status, by who asked."""

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams), "expected a URL"
        page = urlsplit(params.url)
        own, rebound = f"{page.scheme}://{page.netloc}", f"attacker.example:{page.port}"
        async with httpx2.AsyncClient(timeout=10) as browser:

            async def post(choice: str, **headers: str) -> int:
                return (
                    await browser.post(params.url, data={"decision": choice}, headers=headers)
                ).status_code

            seen["rebound read"] = (await browser.get(params.url, headers={"Host": rebound})).status_code
            seen["rebound post"] = await post("approve", Host=rebound, Origin=f"http://{rebound}")
            for origin in origins:
                seen[origin] = await post("approve", Origin=origin)
            seen["human read"] = (await browser.get(params.url)).status_code
            seen["human post"] = await post(decision, Origin=own)
        return types.ElicitResult(action="accept")

    return callback


@contextmanager
def url_only() -> Iterator[None]:
    """MCP clients that declare URL-mode elicitation only (the Python client declares both)."""
    from mcp.client.session import ClientSession

    original = ClientSession._build_capabilities

    def build(self: ClientSession, version: str) -> types.ClientCapabilities:
        capabilities = original(self, version)
        if capabilities.elicitation is None:
            return capabilities
        url = types.ElicitationCapability(url=types.UrlElicitationCapability())
        return capabilities.model_copy(update={"elicitation": url})

    ClientSession._build_capabilities = build  # type: ignore[method-assign]
    try:
        yield
    finally:
        ClientSession._build_capabilities = original  # type: ignore[method-assign]


async def until_held(sandbox: Any, count: int = 1) -> None:
    """Until `count` requests are held at the sandbox (see SandboxHandle.held): polled, as what
    the server does meanwhile needs this event loop."""
    with anyio.fail_after(60):
        while await anyio.to_thread.run_sync(sandbox.held) < count:
            await anyio.sleep(0.01)


def sent(sandbox: Any) -> list[tuple[str, str]]:
    """What the sandbox received that was not a read."""
    return [(r["method"], r["path"]) for r in sandbox.requests() if r["method"] != "GET"]


async def audit_log(session: Any) -> list[dict[str, Any]]:
    resource = await session.read_resource("relatel://audit")
    return json.loads(resource.contents[0].text)["audit"]
