"""What relatel_mcp.internals relies upon in other libraries' internals, pinned: when an upgrade of
uvicorn, h11, the MCP SDK or Python changes one of them, these fail first and name it (the module's
docstring says why each is needed and what would replace it)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import httpx2
import mcp.types as types
import pytest
import uvicorn
from mcp import Client
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.auth.provider import AccessToken
from mcp.server.connection import Connection
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from relatel_mcp.internals import H11Protocol, connection_of, open_sessions, session_owners
from relatel_mcp.web.serving import ConnectionLimits, guarded

from .support import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio

# ------------------------------------------------------------------ uvicorn's H11Protocol


async def _no_content(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then answers 204."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _Transport(asyncio.Transport):
    """A client's connection, as asyncio hands it to a stream protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.closing, self.written = False, b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.7", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def their_state(protocol: H11Protocol) -> object:
    """Where the client is in its request (read afresh each time)."""
    return protocol.conn.their_state


def test_uvicorn_serves_with_the_protocol_class_it_is_given() -> None:
    http = guarded(ConnectionLimits())
    assert issubclass(http, H11Protocol)
    config = uvicorn.Config(_no_content, http=http, log_config=None)
    config.load()
    assert config.http_protocol_class is http


async def test_h11_protocol_attributes_and_request_states() -> None:
    """`transport`, `loop` and `conn` as serving.guarded uses them: `conn.their_state` is IDLE until
    the headers are in, SEND_BODY while the body is read."""
    loop = asyncio.get_running_loop()
    config = uvicorn.Config(_no_content, http=H11Protocol, log_config=None)
    config.load()
    # As uvicorn's Server makes one for each connection.
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}, _loop=loop
    )
    assert isinstance(protocol, H11Protocol)
    transport = _Transport()
    protocol.connection_made(transport)
    assert protocol.transport is transport
    assert protocol.loop is loop
    assert isinstance(protocol.conn, h11.Connection)
    assert their_state(protocol) is h11.IDLE

    protocol.data_received(b"POST / HTTP/1.1\r\nHost: example.com\r\n")
    assert their_state(protocol) is h11.IDLE  # half the headers
    protocol.data_received(b"Content-Length: 5\r\n\r\nab")
    assert their_state(protocol) is h11.SEND_BODY  # the headers, and part of the body
    protocol.data_received(b"cde")
    assert their_state(protocol) not in (h11.IDLE, h11.SEND_BODY)

    for _ in range(100):  # the app's answer, written from a task of its own
        if transport.written:
            break
        await asyncio.sleep(0.01)
    assert transport.written.startswith(b"HTTP/1.1 204 ")
    protocol.connection_lost(None)


# ------------------------------------------------------------------ the MCP SDK's _session_owners


async def test_session_owners_are_who_opened_each_session() -> None:
    """One entry per open session opened with a credential (none without), as the SDK's
    authorization_context of the user, in the order TenantSessionCap compares: (client id, issuer,
    subject); gone when the session is. `open_sessions` counts every open session, with a
    credential or without (the open-sessions metric)."""
    manager = StreamableHTTPSessionManager(app=Server("t"), json_response=True)
    user = AuthenticatedUser(
        AccessToken(token="t", client_id="client", scopes=[], subject="someone", claims={"iss": "issuer"})
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (b"x-as-user", b"1") in scope["headers"]:
            scope["user"] = user  # as the SDK's AuthenticationMiddleware sets it
        await manager.handle_request(scope, receive, send)

    transport = httpx2.ASGITransport(app=app)
    async with manager.run(), httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        anonymous = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert anonymous.status_code == 200, anonymous.text
        assert session_owners(manager) == [] and open_sessions(manager) == 1

        opened = await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "x-as-user": "1"})
        assert opened.status_code == 200, opened.text
        assert session_owners(manager) == [authorization_context(user)]
        assert [tuple(each.values()) for each in session_owners(manager)] == [("client", "issuer", "someone")]
        assert open_sessions(manager) == 2

        session = opened.headers["mcp-session-id"]
        ours = {
            **MCP_HEADERS,
            "x-as-user": "1",
            "mcp-session-id": session,
            "mcp-protocol-version": "2025-11-25",
        }
        closed = await http.delete("/mcp", headers=ours)
        assert closed.status_code == 200, closed.text
        assert session_owners(manager) == [] and open_sessions(manager) == 1


# ------------------------------------------------------------------ the MCP SDK's ServerSession._connection


async def test_a_requests_session_names_its_connection_whose_exit_stack_runs_when_it_ends() -> None:
    """`connection_of(ctx.session)` is the `Connection` of the session, the same for each of its
    requests, and what is pushed on its `exit_stack` runs when the client leaves."""
    seen: list[Connection] = []
    ended: list[str] = []

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        connection = connection_of(ctx.session)
        seen.append(connection)
        connection.exit_stack.callback(ended.append, "gone")
        return types.ListToolsResult(tools=[])

    async with Client(Server("t", on_list_tools=list_tools), mode="legacy") as client:
        await client.list_tools()
        await client.list_tools()
        assert len(seen) == 2 and isinstance(seen[0], Connection) and seen[0] is seen[1]
        assert ended == []
    assert ended == ["gone", "gone"]


# ------------------------------------------------------------------ logging._srcfile


def test_without_srcfile_records_are_made_without_their_caller() -> None:
    """logs.setup sets logging._srcfile to None: what no line of ours shows is not looked up."""
    logger = logging.getLogger("relatel_mcp.test_internals")
    saved = logging._srcfile
    try:
        seen: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record)

        handler = Keep()
        logger.addHandler(handler)
        try:
            logger.warning("looked up")
            logging._srcfile = None
            logger.warning("not looked up")
        finally:
            logger.removeHandler(handler)
        looked_up, not_looked_up = seen[-2:]
        assert looked_up.funcName == "test_without_srcfile_records_are_made_without_their_caller"
        assert (not_looked_up.pathname, not_looked_up.lineno, not_looked_up.funcName) == (
            "(unknown file)",
            0,
            "(unknown function)",
        )
    finally:
        logging._srcfile = saved
