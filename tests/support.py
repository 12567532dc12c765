"""Connecting a real MCP client to the server, which talks HTTP to the sandbox on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp.types as types
from mcp import Client

from relatel_mcp.client import RelatelClient
from relatel_mcp.config import Settings
from relatel_mcp.server import build_server

MODES = ["legacy", "auto"]


@asynccontextmanager
async def connect(
    base_url: str, *, mode: str = "auto", token: str = "sandbox-admin", **settings: Any
) -> AsyncIterator[Client]:
    """An MCP client session with a fresh server in this process (both protocol eras via `mode`)."""
    config = Settings(token=token, base_url=base_url, **settings)
    client = RelatelClient(base_url, connect_timeout=config.connect_timeout, read_timeout=config.read_timeout)
    try:
        async with Client(build_server(config, client), mode=mode) as session:
            yield session
    finally:
        await client.aclose()


def error_of(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    return result.structured_content["error"]


def wire(result: types.CallToolResult) -> str:
    """Everything a client receives for a result, as one string (for token-hygiene checks)."""
    return json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False)
