"""Connecting real MCP clients to the server, which talks HTTP to the sandbox on loopback."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from relatel_mcp.config import Settings
from relatel_mcp.policy import Policy
from relatel_mcp.server import build_server, services
from relatel_mcp.serving import UvicornServer
from relatel_mcp.transports import HttpOptions, http_app

from .hygiene import HYGIENE_TOKEN, STATE_DIRS

MODES = ["legacy", "auto"]
ALLOW = Policy(costly="allow", destructive="allow")  # no confirmation: for tests of the requests themselves


def settings_for(base_url: str, *, token: str | None = HYGIENE_TOKEN, policy: Policy | None = None,
                 state_dir: Path | None = None, **options: Any) -> Settings:  # fmt: skip
    """The server's settings; its token is recognisable, so that tests/hygiene.py can find leaks."""
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="relatel-mcp-test-"))
    STATE_DIRS.append(state_dir)
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
        services(config) as (client, gate),
        Client(build_server(config, client, gate), mode=mode, **client_options) as session,
    ):
        yield session


@contextmanager
def serve_http(settings: Settings, options: HttpOptions) -> Iterator[str]:
    """The HTTP transports on a real loopback socket, in a thread with its own event loop."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with services(settings) as (client, gate):
            server = UvicornServer(http_app(settings, client, gate, options), options.host, 0, lifespan="on")
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
