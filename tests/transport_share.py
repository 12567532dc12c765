"""Which tests drive an MCP client over a real transport, and which only in process: a pytest
plugin (`pytest -p tests.transport_share`, or scripts/transport_share.py) that prints the share
when the session ends.

It records what each test made, wherever it made it (support.connect, a test's own client, inside
mcp.Client for a URL or StdioServerParameters), and puts each test in the first class that fits:

- an MCP client over a real transport: the SDK's stdio_client, streamable_http_client or
  sse_client made or used (a session kept by a fixture counts for each test that sends through
  it), or an MCP client program of the tests' own (tests/clients/) as a subprocess, which serves
  it over stdio;
- raw HTTP requests to an MCP endpoint (/mcp, /sse, /messages/) through a socket, without one;
- an MCP client in process only: mcp.Client given the server object, any other ClientSession, a
  request to an MCP endpoint through httpx's ASGITransport (no socket);
- no MCP client at all.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx2
import mcp.client.client
import mcp.client.sse
import mcp.client.stdio
import mcp.client.streamable_http
import pytest
from mcp.client.session import ClientSession
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

CLIENTS = {
    "stdio": "stdio",
    "http": "streamable HTTP",
    "sse": "SSE",
    "program": "stdio, another client program",
}
FACTORIES = {
    (mcp.client.stdio, "stdio_client"): "stdio",
    (mcp.client.streamable_http, "streamable_http_client"): "http",
    (mcp.client.sse, "sse_client"): "sse",
}
ENDPOINTS = ("/mcp", "/sse", "/messages/")
CLIENT_PROGRAMS = Path(__file__).resolve().parent / "clients"

current: str | None = None  # the test running now
transport: ContextVar[str | None] = ContextVar("transport", default=None)  # the one being entered
seen: dict[str, set[str]] = {}  # test -> what it made
ran: list[str] = []  # the tests that ran (not skipped), in order


def record(kind: str) -> None:
    if current is not None:
        seen.setdefault(current, set()).add(kind)


def _wrap(module: Any, name: str, kind: str) -> None:
    """Record `kind` wherever `module.name` is called, also where it was imported by name before."""
    original = getattr(module, name)

    @functools.wraps(original)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        record(kind)
        if kwargs.get("http_client") is not None:  # the caller's: its requests are this transport's
            kwargs["http_client"].mcp_transport = kind
        return _Marked(original(*args, **kwargs), kind)

    for each in list(sys.modules.values()):
        if getattr(each, name, None) is original:
            setattr(each, name, recorded)


class _Marked:
    """A transport's context manager, entered with `transport` set to its kind: an HTTP client it
    makes for itself is marked as its own (see _watch_requests)."""

    def __init__(self, manager: Any, kind: str) -> None:
        self.manager, self.kind = manager, kind

    async def __aenter__(self) -> Any:
        token = transport.set(self.kind)
        try:
            return await self.manager.__aenter__()
        finally:
            transport.reset(token)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.manager.__aexit__(*exc)


def _patch() -> None:
    for (module, name), kind in FACTORIES.items():
        _wrap(module, name, kind)

    enter = mcp.client.client.Client.__aenter__

    async def client_enter(self: Any) -> Any:
        if isinstance(self.server, Server | MCPServer):
            record("memory")
        return await enter(self)

    mcp.client.client.Client.__aenter__ = client_enter  # type: ignore[method-assign]

    session_init = ClientSession.__init__

    def session(self: Any, *args: Any, **kwargs: Any) -> None:
        record("session")  # any MCP client session; real only if a transport above was made too
        session_init(self, *args, **kwargs)

    ClientSession.__init__ = session  # type: ignore[method-assign]

    for cls in (httpx2.AsyncClient, httpx2.Client):
        _watch_requests(cls)

    popen = subprocess.Popen.__init__

    def started(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
        if any(Path(a).parent == CLIENT_PROGRAMS for a in argv):
            record("program")
        popen(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = started  # type: ignore[method-assign]


def _watch_requests(cls: Any) -> None:
    """Requests to an MCP endpoint: an MCP transport's (made by one, or handed to one), whichever
    test sends them (a session a fixture keeps), else raw; in process through ASGITransport."""
    send, init = cls.send, cls.__init__

    def made(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.mcp_transport = transport.get()

    def endpoint(client: Any, request: httpx2.Request) -> None:
        path = request.url.path
        if path in ENDPOINTS[:2] or path.startswith(ENDPOINTS[2]):
            in_process = isinstance(client._transport, httpx2.ASGITransport | httpx2.MockTransport)
            record("asgi" if in_process else getattr(client, "mcp_transport", None) or "raw")

    cls.__init__ = made

    if cls is httpx2.AsyncClient:

        async def asend(self: Any, request: httpx2.Request, *args: Any, **kwargs: Any) -> Any:
            endpoint(self, request)
            return await send(self, request, *args, **kwargs)

        cls.send = asend
    else:

        def ssend(self: Any, request: httpx2.Request, *args: Any, **kwargs: Any) -> Any:
            endpoint(self, request)
            return send(self, request, *args, **kwargs)

        cls.send = ssend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--transport-share", metavar="PATH", help="also write each test's transports as JSON")


def pytest_configure(config: pytest.Config) -> None:
    _patch()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    global current
    current = item.nodeid
    try:
        yield
    finally:
        current = None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.failed):
        ran.append(report.nodeid)


def classify(kinds: set[str]) -> str:
    """A test's one class: the first real transport its client crossed, else raw requests to an
    MCP endpoint, else an MCP client in process, else none."""
    real = [kind for kind in (*CLIENTS, "raw") if kind in kinds]
    if real:
        return real[0]
    return "in process" if kinds & {"memory", "session", "asgi"} else "none"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    classes = {test: classify(seen.get(test, set())) for test in ran}
    counts = Counter(classes.values())
    clients = sum(counts[kind] for kind in CLIENTS)
    write = terminalreporter.write_line
    share = f"{clients / max(len(ran), 1):.0%}"
    write(
        f"transport share: {clients} of {len(ran)} tests drove an MCP client over a real transport ({share})"
    )
    for kind, label in CLIENTS.items():
        write(f"  {counts[kind]:5d}  {label}")
    write(f"  {counts['raw']:5d}  raw HTTP requests to an MCP endpoint (no MCP client) over a socket")
    write(f"  {counts['in process']:5d}  an MCP client in process only")
    write(f"  {counts['none']:5d}  no MCP client")
    by_file: dict[str, Counter[str]] = {}
    for test, kind in classes.items():
        by_file.setdefault(test.split("::")[0], Counter())[kind] += 1
    for file, tally in sorted(by_file.items()):
        if crossed := sum(tally[kind] for kind in CLIENTS):
            write(f"  {file}: {crossed} of {sum(tally.values())}")
    if path := terminalreporter.config.getoption("--transport-share"):
        made = {test: sorted(seen.get(test, set())) for test in ran}
        Path(path).write_text(json.dumps({"made": made, "class": classes}, indent=1))
