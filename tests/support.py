"""Connecting real MCP clients to the server, which talks HTTP to the sandbox on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp.types as types
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from starlette.responses import PlainTextResponse
from uvicorn.lifespan.on import LifespanOn

from relatel_mcp.app import assemble
from relatel_mcp.core import catalog
from relatel_mcp.front.server import build_server
from relatel_mcp.front.transports import HttpOptions, http_app
from relatel_mcp.functions.toolkit import Toolkit
from relatel_mcp.policy import Policy
from relatel_mcp.settings import Environment, Settings
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


# ------------------------------------------------------------------------------ the client, over a transport

API_KEY = "key-one-0123456789abcdef"  # the HTTP transports' client key (tests/hygiene.py looks for it)
HTTP = HttpOptions(auth="api-key", api_keys=(API_KEY,))  # one tenant: the server holds the token
# The gate, confirmation and error suites run each era over real streamable HTTP (sockets, JSON-RPC
# framing, the handshake or sessionless requests, the SDK's session manager, our auth middleware)
# where they used to run both in process, where 2026-07-28 skips streams, framing and handshake.
ROUTES = [("legacy", "http"), ("auto", "http")]


@asynccontextmanager
async def connect(
    base_url: str,
    *,
    mode: str = "auto",
    transport: str = "memory",
    token: str = HYGIENE_TOKEN,
    policy: Policy | None = None,
    state_dir: Path | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """An MCP client session with a fresh server, in either protocol era (`mode`), over `transport`:
    "memory" (the server in this process, no transport at all), "stdio" (`relatel-mcp serve` as a
    subprocess), "http" (streamable HTTP) or "sse" (legacy SSE), these two on a loopback socket.

    `client_options` go to mcp.Client (e.g. elicitation_callback), or to Settings where they name
    one of its fields (timeouts, retries, rate limits, max_result_bytes). The server's Relatel token
    is `token` over every transport (HTTP with an API key, as a one-tenant deployment runs).
    """
    names = {f.name for f in fields(Settings)}
    options = {k: client_options.pop(k) for k in list(client_options) if k in names}
    config = settings_for(base_url, token=token, policy=policy, state_dir=state_dir, **options)
    async with SERVERS[transport](config) as server, Client(server, mode=mode, **client_options) as session:
        yield session


@asynccontextmanager
async def _in_process(settings: Settings) -> AsyncIterator[Any]:
    async with assemble(settings) as app:
        yield build_server(app)


@asynccontextmanager
async def _over_http(settings: Settings) -> AsyncIterator[Any]:
    with hosted(settings) as url:
        yield http_transport(url, API_KEY)


@asynccontextmanager
async def _over_sse(settings: Settings) -> AsyncIterator[Any]:
    with hosted(settings) as url:
        yield sse_transport(url, API_KEY)


@asynccontextmanager
async def _over_stdio(settings: Settings) -> AsyncIterator[Any]:
    with tempfile.TemporaryDirectory(prefix="relatel-mcp-config-") as folder:
        variables = stdio_environment(settings, Path(folder) / "policy.toml")
        yield StdioServerParameters(command=EXE, args=["serve"], env=env(**variables))


SERVERS: dict[str, Callable[[Settings], AbstractAsyncContextManager[Any]]] = {
    "memory": _in_process,
    "stdio": _over_stdio,
    "http": _over_http,
    "sse": _over_sse,
}
TRANSPORTS = tuple(SERVERS)

# The policy file's tables (relatel_mcp/policy/rules.py), by the Policy field each key is read into.
POLICY_FILE = {
    "policy": {"costly": "costly", "destructive": "destructive", "read_only": "read_only", "dry_run": "dry_run"},
    "destinations": {"allow": "allow_prefixes", "block_premium_rate": "block_premium_rate"},
    "confirmation": {"token_ttl_seconds": "token_ttl_seconds", "elicit_timeout_seconds": "elicit_timeout_seconds"},
}  # fmt: skip


def stdio_environment(settings: Settings, policy_file: Path) -> dict[str, str]:
    """The variables (and the policy file, written to `policy_file`) that make `relatel-mcp serve`
    run with `settings`: each field it has a variable for (relatel_mcp/settings.py's Environment,
    by the same name), where it differs from the default. Anything else fails loudly rather than
    be dropped."""
    variables, unsupported = {}, []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        if f.name == "policy" or value == default:
            continue
        variable = Environment.model_fields.get(f.name)
        if variable is None:
            unsupported.append(f.name)
        else:
            variables[str(variable.validation_alias)] = _variable(value)
    assert not unsupported, f"stdio: no variable for {unsupported}; use transport='http'"
    if settings.store and not settings.secret:  # the command refuses a shared store without one
        variables["RELATEL_MCP_SECRET"] = secrets.token_hex(32)
    if settings.policy != Policy():
        policy_file.write_text(policy_toml(settings.policy), encoding="utf-8")
        variables["RELATEL_MCP_CONFIG"] = str(policy_file)
    return variables


def _variable(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(sorted(value)) if isinstance(value, frozenset | tuple) else str(value)


def policy_toml(policy: Policy) -> str:
    """`policy` as a policy file (`--config`); JSON's scalars and arrays are TOML's."""
    tables = {
        name: {key: getattr(policy, field) for key, field in keys.items()}
        for name, keys in POLICY_FILE.items()
    }
    tables["budgets"] = asdict(policy.budgets)
    tables["prices"] = {k: v for k, v in asdict(policy.prices).items() if v is not None}
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
        for name, table in tables.items()
    )


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


class Host:
    """A loopback uvicorn (UvicornServer, in a thread with its own event loop) that serves one
    server at a time: connect()'s HTTP transports, `http_app` for one test's settings, started and
    stopped with its ASGI lifespan as uvicorn runs it. Starting and stopping uvicorn itself costs
    0.2 s a server (its shutdown polls and sleeps), which over a few hundred tests is minutes."""

    def __init__(self) -> None:
        self.app: Any = None  # the server being served, if any
        self.busy = False
        self.loop = asyncio.new_event_loop()
        self.server = UvicornServer(self, lifespan="off")
        serve = lambda: self.loop.run_until_complete(self.server.serve())  # noqa: E731
        threading.Thread(target=serve, name=f"host-{self.server.port}", daemon=True).start()
        assert self.server.started.wait(10)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:  # between servers: what a client of a stopped one would meet
            return await PlainTextResponse("No server here.", 503)(scope, receive, send)
        await self.app(scope, receive, send)

    @contextmanager
    def serving(self, settings: Settings, options: HttpOptions) -> Iterator[str]:
        started, stop = threading.Event(), asyncio.Event()

        async def life() -> None:
            try:
                async with assemble(settings, api_keys=options.api_keys) as app:
                    web = http_app(app, options)
                    lifespan = LifespanOn(uvicorn.Config(web, lifespan="on", log_config=None))
                    await lifespan.startup()
                    assert not lifespan.should_exit, "the server did not start"
                    self.app = web
                    started.set()
                    try:
                        await stop.wait()
                    finally:
                        self.app = None
                        await lifespan.shutdown()
            finally:
                started.set()

        self.busy = True
        life_ = asyncio.run_coroutine_threadsafe(life(), self.loop)
        try:
            assert started.wait(10), "the server did not start within 10 s"
            if self.app is None:  # it failed to start: raise why, here
                life_.result(10)
            yield self.server.url
        finally:
            self.loop.call_soon_threadsafe(stop.set)
            life_.result(10)
            self.busy = False


HOSTS: list[Host] = []  # for the test session; more than one only where servers are open at once
# A forked child (mutation testing runs each mutant in one) has none of their threads: it starts its own.
os.register_at_fork(after_in_child=HOSTS.clear)


@contextmanager
def hosted(settings: Settings, options: HttpOptions = HTTP) -> Iterator[str]:
    """The HTTP transports for `settings` on a loopback socket, as `serve_http`, at a fraction of
    its cost: the socket and uvicorn are kept from one server to the next (see Host; so the
    connection limits are ConnectionLimits' defaults, whatever `options.limits` says)."""
    host = next((h for h in HOSTS if not h.busy), None)
    if host is None:
        HOSTS.append(host := Host())
    with host.serving(settings, options) as url:
        yield url


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


# One TLS context for every HTTP client of the tests, which all speak plain HTTP on loopback:
# httpx builds one for each client otherwise, loading the CA bundle (some 50 ms of CPU each).
TLS = ssl.create_default_context()


def web_client(**options: Any) -> httpx2.AsyncClient:
    """An HTTP client for loopback (a human's browser, an MCP client's connection)."""
    return httpx2.AsyncClient(verify=TLS, **options)


def http_transport(url: str, bearer: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return streamable_http_client(f"{url}/mcp", http_client=web_client(headers=headers, timeout=30))


def sse_transport(url: str, bearer: str | None = None) -> Any:
    def client(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
        timeout = timeout or httpx2.Timeout(30, read=300)  # the SDK's own factory's defaults
        return web_client(headers=headers, timeout=timeout, auth=auth)

    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    return sse_client(f"{url}/sse", headers=headers, httpx_client_factory=client)


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
        async with web_client(timeout=10) as browser:
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
        async with web_client(timeout=10) as browser:

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
