"""HTTP sessions end when their client goes quiet (--session-idle-seconds), and leave nothing of
ours behind when they end: over real loopback sockets, streamable HTTP and legacy SSE.

A session's end is awaited by polling with a bound, never timed: an idle session is one nobody
sends anything to, so it is watched from the side (its stream ending, or what the server keeps for
it going), while an active session beside it keeps sending more often than the idle time.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx2
import pytest

from relatel_mcp import cli
from relatel_mcp.core.errors import ConfigError
from relatel_mcp.front import server
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.settings import load_settings

from .hygiene import HYGIENE
from .support import EXE, env, serve_http, settings_for

pytestmark = pytest.mark.anyio

KEY = "key-one-0123456789abcdef"
IDLE = 2.0  # seconds; the active sessions below send every ACTIVE seconds, well inside it
ACTIVE = 0.2
BOUND = 30.0  # the most any end is waited for
VERSION = "2025-11-25"
IDS = itertools.count(10)  # request ids after the handshake's
HEADERS = {"Authorization": f"Bearer {KEY}", "Accept": "application/json, text/event-stream",
           "Content-Type": "application/json"}  # fmt: skip


def rpc(method: str, params: dict[str, Any] | None = None, id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return message


def initialize(elicitation: bool = False) -> dict[str, Any]:
    """A 2025-11-25 client's first request; without elicitation, as many clients are."""
    capabilities = {"elicitation": {}} if elicitation else {}
    params = {
        "protocolVersion": VERSION,
        "capabilities": capabilities,
        "clientInfo": {"name": "t", "version": "1"},
    }
    return rpc("initialize", params, id=1)


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[server.Handlers]:
    """The Handlers of every server built during the test: what they keep per session."""
    made: list[server.Handlers] = []

    class Recorded(server.Handlers):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(server, "Handlers", Recorded)
    return made


@contextmanager
def serving(sandbox: Any, tmp_path: Any, **options: Any) -> Iterator[str]:
    options = {"auth": "api-key", "api_keys": (KEY,), "session_idle_seconds": IDLE, **options}
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), HttpOptions(**options)) as url:
        yield url


async def until(
    done: Callable[[], bool | Awaitable[bool]], what: str, every: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Wait (at most BOUND seconds) until `done`, doing `every` each ACTIVE seconds meanwhile."""
    with anyio.move_on_after(BOUND):
        while True:
            result = done()
            if result if isinstance(result, bool) else await result:
                return
            if every is not None:
                await every()
            await anyio.sleep(ACTIVE)
    pytest.fail(f"not within {BOUND:.0f} s: {what}")


def told(made: list[server.Handlers]) -> set[str]:
    """The sessions the server keeps an entry for (those told of hidden tools)."""
    (handlers,) = made
    return set(handlers.told)


# ------------------------------------------------------------------ streamable HTTP


class HttpSession:
    """A streamable-HTTP session driven by hand: initialize, initialized, tools/list."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.id = ""

    async def open(self) -> HttpSession:
        answer = await self.http.post("/mcp", json=initialize(), headers=HEADERS)
        assert answer.status_code == 200, answer.text
        self.id = answer.headers["mcp-session-id"]
        assert await self.send(rpc("notifications/initialized")) == 202
        assert await self.send(rpc("tools/list", id=2)) == 200
        return self

    async def send(self, message: dict[str, Any]) -> int:
        headers = {**HEADERS, "Mcp-Session-Id": self.id, "MCP-Protocol-Version": VERSION}
        return (await self.http.post("/mcp", json=message, headers=headers)).status_code

    async def ping(self) -> None:
        assert await self.send(rpc("ping", id=next(IDS))) == 200, "the active session was ended"

    async def close(self) -> int:
        headers = {**HEADERS, "Mcp-Session-Id": self.id, "MCP-Protocol-Version": VERSION}
        return (await self.http.delete("/mcp", headers=headers)).status_code


@pytest.mark.slow
async def test_an_idle_streamable_http_session_is_ended_and_an_active_one_is_not(sandbox, tmp_path, handlers):
    with serving(sandbox, tmp_path, max_sessions_per_tenant=2) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            idle, active = await HttpSession(http).open(), await HttpSession(http).open()
            assert told(handlers) == {idle.id, active.id}
            refused = await http.post("/mcp", json=initialize(), headers=HEADERS)
            assert refused.status_code == 503  # two open: the credential's cap

            await until(lambda: idle.id not in told(handlers), "the idle session ended", every=active.ping)

            assert await idle.send(rpc("ping", id=next(IDS))) == 404  # the SDK's answer: initialize again
            await active.ping()
            assert told(handlers) == {active.id}
            again = await HttpSession(http).open()  # the ended session's place is free
            await again.ping()


async def test_a_closed_streamable_http_session_leaves_nothing_of_ours(sandbox, tmp_path, handlers):
    with serving(sandbox, tmp_path) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            sessions = [await HttpSession(http).open() for _ in range(3)]
            assert told(handlers) == {s.id for s in sessions}
            for session in sessions:
                assert await session.close() == 200
            await until(lambda: not told(handlers), "what was kept for the closed sessions is gone")


@pytest.mark.slow
async def test_the_command_line_ends_a_session_idle_for_the_flags_time(tmp_path):
    command = [EXE, "serve", "--sandbox", "--transport", "http", "--auth", "none", "--port", "0",
               "--state-dir", str(tmp_path), "--session-idle-seconds", "1"]  # fmt: skip
    process = subprocess.Popen(command, env=env(RELATEL_MCP_SESSION_IDLE_SECONDS="600"), stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.append(process.stderr.read()), daemon=True)
    try:
        line = ""
        while "serving MCP at" not in line:
            line = process.stderr.readline()
            assert line, "the server exited before serving"
            said.append(line)
        url = re.search(r"(http://127\.0\.0\.1:\d+)/mcp", line).group(1)
        reader.start()  # the rest, read as it comes (a full pipe would stop the server)
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            session = await HttpSession(http).open()
            wait = 1.5  # each look at the session is a request, which restarts its idle time
            while True:
                await anyio.sleep(wait)
                status = await session.send(rpc("ping", id=next(IDS)))
                if status != 200 or wait > BOUND:
                    break
                wait *= 2
            assert status == 404, "the session outlived the flag's idle time (1 s, over the variable's 600)"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        if reader.ident is None:  # it stopped before serving
            reader.start()
        reader.join(15)
        HYGIENE.scan_stderr("relatel-mcp serve --sandbox --transport http", "".join(said))


def test_the_idle_time_is_the_flag_else_the_environment_else_1800_seconds():
    env = {"RELATEL_TOKEN": "t"}
    assert load_settings(env=env).remote.session_idle_seconds == 1800
    assert (
        load_settings(env={**env, "RELATEL_MCP_SESSION_IDLE_SECONDS": "60"}).remote.session_idle_seconds == 60
    )
    flagged = load_settings(env={**env, "RELATEL_MCP_SESSION_IDLE_SECONDS": "60"}, session_idle_seconds=5)
    assert flagged.remote.session_idle_seconds == 5
    with pytest.raises(ConfigError, match="RELATEL_MCP_SESSION_IDLE_SECONDS must be between 1 and 86400"):
        load_settings(env={**env, "RELATEL_MCP_SESSION_IDLE_SECONDS": "0"})
    with pytest.raises(ConfigError, match="--session-idle-seconds must be between 1 and 86400"):
        load_settings(env=env, session_idle_seconds=0.5)
    args = cli.parse(["serve", "--transport", "http", "--session-idle-seconds", "90"])
    assert cli._settings(args).remote.session_idle_seconds == 90


# ------------------------------------------------------------------ legacy SSE


class SseSession:
    """A legacy SSE session driven by hand: the stream read in the background until it ends."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.endpoint = ""
        self.messages: list[dict[str, Any]] = []
        self.ended = anyio.Event()
        self.status = 0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[SseSession]:
        async with (
            self.http.stream("GET", "/sse", headers=HEADERS) as stream,
            anyio.create_task_group() as tasks,
        ):
            self.status = stream.status_code
            if self.status != 200:
                yield self
                return
            events = stream.aiter_lines()
            tasks.start_soon(self._read, events)
            await until(lambda: bool(self.endpoint), "the endpoint event")
            yield self
            tasks.cancel_scope.cancel()

    async def _read(self, lines: AsyncIterator[str]) -> None:
        event: dict[str, str] = {}
        async for line in lines:
            if line:
                key, _, value = line.partition(":")
                event[key] = value.strip()
                continue
            if event.get("event") == "endpoint":
                self.endpoint = event["data"]
            elif event.get("event") == "message":
                self.messages.append(json.loads(event["data"]))
            event = {}
        self.ended.set()

    @property
    def id(self) -> str:
        return self.endpoint.rsplit("session_id=", 1)[1]

    async def send(self, message: dict[str, Any]) -> int:
        return (await self.http.post(self.endpoint, json=message, headers=HEADERS)).status_code

    async def answer(self, id: int) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found[:] = [m for m in self.messages if m.get("id") == id and "method" not in m]
            return bool(found)

        await until(arrived, f"the answer to request {id}")
        return found[0]

    async def handshake(self, elicitation: bool = False) -> SseSession:
        assert await self.send(initialize(elicitation)) == 202
        await self.answer(1)
        assert await self.send(rpc("notifications/initialized")) == 202
        assert await self.send(rpc("tools/list", id=2)) == 202
        await self.answer(2)
        return self

    async def ping(self) -> None:
        assert not self.ended.is_set(), "the active session was ended"
        assert await self.send(rpc("ping", id=next(IDS))) == 202


@pytest.mark.slow
async def test_an_idle_sse_session_is_ended_and_an_active_one_is_not(sandbox, tmp_path, handlers):
    with serving(sandbox, tmp_path, max_sessions_per_tenant=2) as url:
        async with (
            httpx2.AsyncClient(base_url=url, timeout=30) as http,
            SseSession(http).open() as idle,
            SseSession(http).open() as active,
        ):
            await idle.handshake()
            await active.handshake()
            assert told(handlers) == {idle.id, active.id}
            async with SseSession(http).open() as refused:
                assert refused.status == 503  # two open: the credential's cap

            await until(idle.ended.is_set, "the idle session's stream ended", every=active.ping)

            assert await idle.send(rpc("ping", id=next(IDS))) == 404  # the SDK's answer: connect again
            await active.ping()
            await until(lambda: told(handlers) == {active.id}, "what was kept for the idle session is gone")
            async with SseSession(http).open() as again:  # the ended session's place is free
                assert again.status == 200
                await again.handshake()


@pytest.mark.slow
async def test_an_sse_session_waiting_for_its_answer_is_not_ended(sandbox, tmp_path):
    """A tool call waiting for a human's yes longer than the idle time, with nothing sent meanwhile:
    the session lasts, as a streamable-HTTP POST in flight does, and counts from the answer."""
    with serving(sandbox, tmp_path) as url:
        async with (
            httpx2.AsyncClient(base_url=url, timeout=30) as http,
            SseSession(http).open() as session,
        ):
            await session.handshake(elicitation=True)
            call = {"name": "initiate_call", "arguments": {"to_number": "+45 28 11 44 77"}}
            assert await session.send(rpc("tools/call", call, id=5)) == 202
            await until(lambda: any(m.get("method") == "elicitation/create" for m in session.messages),
                        "the question")  # fmt: skip
            question = next(m for m in session.messages if m.get("method") == "elicitation/create")

            await anyio.sleep(IDLE * 2)  # the human thinks; the client sends nothing
            assert not session.ended.is_set()

            assert (
                await session.send({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "decline"}})
                == 202
            )
            result = await session.answer(5)
            assert result["result"]["structuredContent"]["error"]["code"] == "declined", result
            await until(session.ended.is_set, "the session, idle after the answer, ended")


async def test_a_closed_sse_session_leaves_nothing_of_ours(sandbox, tmp_path, handlers):
    with serving(sandbox, tmp_path) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            for _ in range(3):  # the client closes the stream: the session ends
                async with SseSession(http).open() as session:
                    assert session.status == 200
                    await session.handshake()
                    assert told(handlers) == {session.id}
                await until(lambda: not told(handlers), "what was kept for the closed session is gone")
