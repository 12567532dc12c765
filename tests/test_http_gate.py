"""The gate's network holes, tried again over real loopback sockets: another tenant answering a
question in someone else's session (by another spelling of its id, or after churning the session
map), two Authorization headers, random bearers that make the server flood Relatel, a bearer
that is not ASCII, one tenant filling the session cap, and half-sent requests (slowloris).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client

from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.policy import Policy
from relatel_mcp.upstream import ratelimit
from relatel_mcp.web.serving import ConnectionLimits

from .support import (
    ATTACKER,
    answering,
    approving,
    error_of,
    http_transport,
    sent,
    serve_http,
    settings_for,
    tried_by_other_sites,
    url_only,
)

pytestmark = pytest.mark.anyio

ALICE, MALLORY = "sandbox-admin", "sandbox-employee"  # two people, each with a valid token
KEY = "key-one-0123456789abcdef"
CALL = {"name": "initiate_call", "arguments": {"to_number": "+45 28 11 44 77"}}
ACCEPT = {"action": "accept", "content": {"confirm": True}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def rpc(method: str, params: dict[str, Any] | None = None, id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return message


INITIALIZE = rpc(
    "initialize",
    {
        "protocolVersion": "2025-11-25",
        "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "t", "version": "1"},
    },
    id=1,
)


@pytest.fixture
def passthrough(sandbox, tmp_path):
    settings = settings_for(
        sandbox.url, token=None, state_dir=tmp_path, policy=Policy(elicit_timeout_seconds=3)
    )
    with serve_http(
        settings, HttpOptions(auth="passthrough", max_sessions=4, max_sessions_per_tenant=3)
    ) as url:
        yield url


# ------------------------------------------------------------------ 2. SSE: the id as the SDK routes it


class SseSession:
    """An SSE session driven by hand, as an attacker (or a careful test) would."""

    def __init__(self, http: httpx2.AsyncClient, token: str) -> None:
        self.http, self.token = http, token
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.endpoint = ""

    @asynccontextmanager
    async def open(self) -> AsyncIterator[SseSession]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            self.http.stream("GET", "/sse", headers=headers) as stream,
            anyio.create_task_group() as tasks,
        ):
            lines = stream.aiter_lines()
            tasks.start_soon(self._read, lines)
            self.endpoint = (await self.next_event())["data"]
            yield self
            tasks.cancel_scope.cancel()

    async def _read(self, lines: AsyncIterator[str]) -> None:
        event: dict[str, str] = {}
        async for line in lines:
            if not line:
                await self.events.put(event)
                event = {}
            elif ":" in line:
                key, _, value = line.partition(":")
                event[key] = value.strip()

    async def next_event(self) -> dict[str, Any]:
        with anyio.fail_after(10):
            return await self.events.get()

    async def next_message(self) -> dict[str, Any]:
        while (event := await self.next_event()).get("event") != "message":
            pass
        return json.loads(event["data"])

    async def response_to(self, request_id: int) -> dict[str, Any]:
        while (message := await self.next_message()).get("id") != request_id or "method" in message:
            pass
        return message

    @property
    def session_id(self) -> str:
        return self.endpoint.rsplit("session_id=", 1)[1]

    async def post(self, message: dict[str, Any], *, query: str | None = None, token: str | None = None,
                   headers: dict[str, str] | None = None) -> int:  # fmt: skip
        path = self.endpoint if query is None else f"/messages/?{query}"
        response = await self.http.post(
            path, json=message, headers={"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        )
        return response.status_code

    async def handshake_and_call(self) -> int:
        """Initialize (declaring elicitation), call initiate_call, and return the id of the question."""
        assert await self.post(INITIALIZE) == 202
        await self.next_message()
        assert await self.post(rpc("notifications/initialized")) == 202
        assert await self.post(rpc("tools/call", CALL, id=2)) == 202
        question = await self.next_message()
        assert question["method"] == "elicitation/create", question
        return question["id"]


def spellings(session_id: str, own: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Every way to name a session that the SDK's UUID(hex=...) reads as the same one."""
    canonical = uuid.UUID(hex=session_id)
    return {
        "upper case": (f"session_id={session_id.upper()}", {}),
        "dashes": (f"session_id={canonical}", {}),
        "braces": (f"session_id={{{canonical}}}", {}),
        "urn:uuid:": (f"session_id=urn:uuid:{canonical}", {}),
        "repeated, victim last": (f"session_id={own}&session_id={session_id}", {}),
        "repeated, victim first": (f"session_id={session_id}&session_id={own}", {}),
        "header disagrees": (f"session_id={session_id}", {"Mcp-Session-Id": own}),
        "exact": (f"session_id={session_id}", {}),
    }


async def test_another_tenant_cannot_answer_a_question_in_an_sse_session_by_any_spelling(
    sandbox, passthrough
):
    async with (
        httpx2.AsyncClient(base_url=passthrough, timeout=30) as http,
        SseSession(http, MALLORY).open() as mallory,
        SseSession(http, ALICE).open() as alice,
    ):
        question = await alice.handshake_and_call()
        answer = {"jsonrpc": "2.0", "id": question, "result": ACCEPT}
        statuses = {
            name: await alice.post(answer, query=query, token=MALLORY, headers=headers)
            for name, (query, headers) in spellings(alice.session_id, mallory.session_id).items()
        }
        result = await alice.response_to(2)  # no answer from Alice: the question times out
    print(f"\nSSE spellings tried by another tenant: {statuses}")
    assert all(status in (400, 404) for status in statuses.values()), statuses
    assert statuses["repeated, victim last"] == statuses["header disagrees"] == 400
    assert result["id"] == 2 and result["result"]["isError"]
    assert result["result"]["structuredContent"]["error"]["code"] == "declined"
    assert sent(sandbox) == [] and sandbox.outbox() == []


async def test_the_owner_answers_by_any_spelling_and_the_call_is_placed_once(sandbox, passthrough):
    """The control: the same answer from Alice herself is taken (so the test above can fail)."""
    async with (
        httpx2.AsyncClient(base_url=passthrough, timeout=30) as http,
        SseSession(http, ALICE).open() as alice,
    ):
        question = await alice.handshake_and_call()
        answer = {"jsonrpc": "2.0", "id": question, "result": ACCEPT}
        status = await alice.post(answer, query=f"session_id={uuid.UUID(hex=alice.session_id)}")
        result = await alice.response_to(2)
    assert status == 202 and not result["result"].get("isError"), result
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


# ------------------------------------------------------------------ 3. streamable HTTP: session churn


async def test_churning_sessions_does_not_unbind_a_live_one(sandbox, passthrough):
    asked = anyio.Event()
    release = anyio.Event()
    seen: dict[str, Any] = {}

    async def waits(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen["question"] = context.request_id
        asked.set()
        await release.wait()
        return types.ElicitResult(action="decline")

    async def remember(response: httpx2.Response) -> None:
        seen.setdefault("session", response.headers.get("mcp-session-id"))

    alice_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ALICE}"}, timeout=30,
                                    event_hooks={"response": [remember]})  # fmt: skip
    from mcp.client.streamable_http import streamable_http_client

    transport = streamable_http_client(f"{passthrough}/mcp", http_client=alice_http)
    async with (
        Client(transport, mode="legacy", elicitation_callback=waits) as alice,
        anyio.create_task_group() as tg,
    ):
        outcome: dict[str, Any] = {}

        async def call() -> None:
            outcome["result"] = await alice.call_tool(CALL["name"], CALL["arguments"])

        tg.start_soon(call)
        await asked.wait()
        async with httpx2.AsyncClient(
            base_url=passthrough, headers={**MCP_HEADERS, "Authorization": f"Bearer {MALLORY}"}
        ) as http:
            churned = 0
            for _ in range(40):  # 10 × the session cap: the old owner map kept 4 × cap entries
                opened = await http.post("/mcp", json=INITIALIZE)
                if opened.status_code == 200:
                    churned += 1
                    await http.delete("/mcp", headers={"Mcp-Session-Id": opened.headers["mcp-session-id"]})
            answer = {"jsonrpc": "2.0", "id": seen["question"], "result": ACCEPT}
            takeover = await http.post("/mcp", json=answer, headers={"Mcp-Session-Id": seen["session"]})
        release.set()
    assert churned == 40
    assert takeover.status_code == 404
    assert error_of(outcome["result"])["code"] == "declined"
    assert sent(sandbox) == []


async def test_one_tenant_cannot_fill_the_session_cap(passthrough):
    async with httpx2.AsyncClient(base_url=passthrough, headers=MCP_HEADERS) as http:
        alice = [
            (
                await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {ALICE}"})
            ).status_code
            for _ in range(4)
        ]
        mallory = (
            await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {MALLORY}"})
        ).status_code
    assert alice == [200, 200, 200, 503] and mallory == 200


# ------------------------------------------------------------------ 7. 8. 12. credentials


async def test_two_authorization_headers_are_refused(sandbox, tmp_path):
    options = HttpOptions(auth="api-key", api_keys=(KEY,))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            both = [("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer someone-elses-token")]
            twice = await http.post("/mcp", json=INITIALIZE, headers=[*MCP_HEADERS.items(), *both])
            sessions = await http.post(
                "/mcp", json=INITIALIZE,
                headers=[*MCP_HEADERS.items(), both[0], ("Mcp-Session-Id", "a"), ("Mcp-Session-Id", "b")],
            )  # fmt: skip
    assert twice.status_code == sessions.status_code == 400
    assert sandbox.requests() == []


async def test_only_a_bearer_credential_of_at_most_4096_characters_is_taken(sandbox, tmp_path):
    """The key itself under any other scheme is refused, as is a credential longer than 4,096
    characters even where it is a configured key; spaces around the credential are not part of it."""
    longest, too_long = "k" * 4096, "k" * 4097
    options = HttpOptions(auth="api-key", api_keys=(KEY, longest, too_long))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        async with httpx2.AsyncClient(base_url=url) as http:

            async def status(authorization: str) -> int:
                headers = {**MCP_HEADERS, "Authorization": authorization}
                return (await http.post("/mcp", json=INITIALIZE, headers=headers)).status_code

            statuses = [
                await status(value)
                for value in (f"Bearer {KEY}", f"bearer  {KEY}", f"Basic {KEY}", f"Token {KEY}",
                              f"Bearer {longest}", f"Bearer {too_long}")
            ]  # fmt: skip
    assert statuses == [200, 200, 401, 401, 200, 401]
    assert sandbox.requests() == []


async def test_allowed_hosts_star_admits_any_host_and_the_default_only_loopback(sandbox, tmp_path):
    """DNS-rebinding protection: loopback by any of its names, and a foreign Host only where the
    operator lists it or `*`."""
    statuses: dict[tuple[str, str], int] = {}
    for allowed in ((), ("mcp.example.com",), ("*",)):
        options = HttpOptions(auth="api-key", api_keys=(KEY,), allowed_hosts=allowed)
        with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
            port = url.rsplit(":", 1)[1]
            async with httpx2.AsyncClient(base_url=url) as http:
                for name in ("localhost", "[::1]", "mcp.example.com", "attacker.example"):
                    host = f"{name}:{port}" if name in ("localhost", "[::1]") else name
                    headers = {**MCP_HEADERS, "Authorization": f"Bearer {KEY}", "Host": host}
                    response = await http.post("/mcp", json=INITIALIZE, headers=headers)
                    statuses[",".join(allowed) or "default", name] = response.status_code
    admitted = {key for key, status in statuses.items() if status == 200}
    assert set(statuses.values()) == {200, 421}
    assert admitted == {
        *[(allowed, name) for allowed in ("default", "mcp.example.com", "*") for name in ("localhost", "[::1]")],
        ("mcp.example.com", "mcp.example.com"), ("*", "mcp.example.com"), ("*", "attacker.example"),
    }  # fmt: skip


async def test_random_bearers_cannot_make_the_server_flood_relatel(sandbox, tmp_path, monkeypatch):
    """Token buckets, 20 checks of unknown credentials per address and 30 in all, refilled over
    10 s: here the limiter's clock stands still, so that no bucket refills while the requests
    are sent however long they take, and each count is exact."""
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    with serve_http(settings, HttpOptions(auth="passthrough", checks_per_client=20, checks_total=30)) as url:
        async with httpx2.AsyncClient(base_url=url, headers=MCP_HEADERS, timeout=60) as http:
            statuses = [
                (await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer random-{i}"}))
                for i in range(300)
            ]
        others = []
        for address in ("127.0.0.2", "127.0.0.3"):  # other clients: their own allowance, up to the total
            transport = httpx2.AsyncHTTPTransport(local_address=address)
            async with httpx2.AsyncClient(
                base_url=url, headers=MCP_HEADERS, transport=transport, timeout=60
            ) as http:
                for i in range(10):
                    response = await http.post(
                        "/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {address}-{i}"}
                    )
                    others.append(response.status_code)
    checks = [r for r in sandbox.requests() if r["path"] == "/api/v2/employee"]
    assert [r.status_code for r in statuses] == [401] * 20 + [429] * 280  # checked, then refused
    assert all(int(r.headers["retry-after"]) >= 1 for r in statuses if r.status_code == 429)
    assert others == [401] * 10 + [429] * 10  # the rest of the total, then none
    assert len(checks) == 30


async def test_a_valid_token_is_not_held_up_by_the_limit_on_unknown_ones(sandbox, passthrough):
    async with httpx2.AsyncClient(base_url=passthrough, headers=MCP_HEADERS) as http:
        await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {ALICE}"})  # known now
        for i in range(40):
            await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer random-{i}"})
        again = await http.post("/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {ALICE}"})
    assert again.status_code == 200


async def test_a_bearer_that_is_not_ascii_is_401_not_500(sandbox, passthrough):
    host, port = passthrough.removeprefix("http://").split(":")
    body = json.dumps(INITIALIZE).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sandbox-admin\xe9\xff\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status = (await reader.readline()).decode()
    writer.close()
    assert status.startswith("HTTP/1.1 401")
    assert sandbox.requests() == []


# ------------------------------------------------------------------ URL mode over HTTP


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_url_mode_over_http_serves_the_page_from_the_server_itself(sandbox, passthrough, mode):
    pages: list[dict[str, Any]] = []
    with url_only():
        async with Client(
            http_transport(passthrough, ALICE), mode=mode, elicitation_callback=approving(pages=pages)
        ) as s:
            result = await s.call_tool(CALL["name"], CALL["arguments"])
    assert not result.is_error and pages[0]["url"].startswith(f"{passthrough}/approve/")
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


async def test_url_mode_over_http_uses_the_public_url(sandbox, tmp_path):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    options = HttpOptions(auth="passthrough", public_url="https://mcp.example.com/relatel")
    urls: list[str] = []

    async def look(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        urls.append(params.url)
        return types.ElicitResult(action="decline")

    with serve_http(settings, options) as url, url_only():
        async with Client(http_transport(url, ALICE), mode="legacy", elicitation_callback=look) as s:
            await s.call_tool(CALL["name"], CALL["arguments"])
    assert urls[0].startswith("https://mcp.example.com/relatel/approve/")


async def test_url_mode_over_http_the_page_refuses_a_rebound_host_and_a_foreign_origin(sandbox, passthrough):
    """As /mcp does: 421 to a name rebound to the server's address, 403 to another site's POST,
    and the decision stays the human's (their Decline, from the page itself, is what counts)."""
    seen: dict[str, int] = {}
    with url_only():
        async with Client(
            http_transport(passthrough, ALICE),
            mode="legacy",
            elicitation_callback=tried_by_other_sites("decline", seen),
        ) as s:
            error = error_of(await s.call_tool(CALL["name"], CALL["arguments"]))
    assert seen == {
        "rebound read": 421, "rebound post": 421, ATTACKER: 403, "human read": 200, "human post": 200,
    }  # fmt: skip
    assert error["code"] == "declined" and "declined on the approval page" in error["message"]
    assert sent(sandbox) == []


async def test_url_mode_over_http_the_public_url_host_is_the_servers_own(sandbox, tmp_path):
    """Behind a proxy, browsers and clients reach the server as its --public-url: that Host and
    Origin pass the check, at the page and at /mcp."""
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    options = HttpOptions(auth="passthrough", public_url="https://mcp.example.com/relatel")
    proxied = {"Host": "mcp.example.com", "Origin": "https://mcp.example.com"}
    clicked: list[int] = []

    async def through_the_proxy(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        path = params.url.removeprefix("https://mcp.example.com/relatel")  # the proxy strips its prefix
        async with httpx2.AsyncClient(base_url=url, headers=proxied) as browser:
            clicked.append((await browser.post(path, data={"decision": "approve"})).status_code)
        return types.ElicitResult(action="accept")

    with serve_http(settings, options) as url, url_only():
        headers = {**MCP_HEADERS, **proxied, "Authorization": f"Bearer {ALICE}"}
        async with httpx2.AsyncClient(base_url=url) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=headers)
        async with Client(http_transport(url, ALICE), elicitation_callback=through_the_proxy) as s:
            result = await s.call_tool(CALL["name"], CALL["arguments"])
    assert opened.status_code == 200 and clicked == [200] and not result.is_error
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


async def test_form_elicitation_still_works_over_http_for_the_owner(sandbox, passthrough):
    async with Client(http_transport(passthrough, ALICE), elicitation_callback=answering("accept")) as s:
        result = await s.call_tool(CALL["name"], CALL["arguments"])
    assert not result.is_error and sent(sandbox) == [("POST", "/api/v2/switch/dial")]


# ------------------------------------------------------------------ 6. slowloris

LIVENESS = 60  # seconds: far beyond any normal answer; a bound on hanging, not on speed


def slow_sockets(url: str, count: int, addresses: list[str]) -> list[socket.socket]:
    """`count` connections from `addresses` in turn, each having sent half a request header."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((addresses[i % len(addresses)], 0))
        sock.setblocking(False)
        sock.connect_ex((host, int(port)))
        sockets.append(sock)
    _until_connected(sockets)
    for sock in sockets:
        with contextlib.suppress(OSError):  # refused at once: over the per-client cap
            sock.send(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")  # half a header
    return sockets


def _until_connected(sockets: list[socket.socket]) -> None:
    """Until every connection is made or refused (its socket writable, or in error)."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLOUT)
    waiting = len(sockets)
    deadline = time.monotonic() + LIVENESS
    while waiting:
        left = deadline - time.monotonic()
        assert left > 0, f"{waiting} connections neither made nor refused in {LIVENESS} s"
        for fd, _ in poller.poll(left * 1000):
            poller.unregister(fd)
            waiting -= 1


@pytest.mark.slow
async def test_slow_clients_cannot_starve_the_server(sandbox, tmp_path):
    """/healthz and a tool call are answered while 1,000 half-sent requests are open (those over
    the caps refused): their header deadline, raised here past any wait of the test's, has not
    freed the server when it answers, since the server still holds some of them after."""
    limits = ConnectionLimits(header_timeout=10 * LIVENESS)
    options = HttpOptions(auth="api-key", api_keys=(KEY,), limits=limits)
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        async with Client(http_transport(url, KEY)) as session:
            sockets = slow_sockets(url, 1000, [f"127.0.0.{i}" for i in range(2, 6)])
            try:
                with anyio.fail_after(LIVENESS):
                    async with httpx2.AsyncClient(base_url=url, timeout=LIVENESS) as http:
                        health = await http.get("/healthz")
                    result = await session.call_tool("list_tags", {})
                held = sum(1 for s in sockets if _open(s))
            finally:
                for sock in sockets:
                    sock.close()
    print(f"\n1000 slow sockets: {held} held by the server, {1000 - held} refused")
    assert health.status_code == 200 and not result.is_error
    assert 0 < held <= 4 * limits.per_client


@pytest.mark.slow
async def test_a_half_sent_header_is_closed_by_the_server_unanswered(sandbox, tmp_path):
    """At the header deadline (10 s by default): polled, with a bound on hanging only."""
    options = HttpOptions(auth="api-key", api_keys=(KEY,))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        started = time.monotonic()
        with anyio.fail_after(LIVENESS):
            assert await reader.read() == b""  # closed by the server, no answer
        print(f"\nhalf a header: closed after {time.monotonic() - started:.1f} s")
        writer.close()


def _open(sock: socket.socket) -> bool:
    """Still connected (the server neither refused nor closed it)?"""
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
