"""Connecting a real MCP client to the server, which talks HTTP to the sandbox on loopback."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client

from relatel_mcp.client import RelatelClient
from relatel_mcp.config import Settings
from relatel_mcp.policy import Policy, open_gate
from relatel_mcp.server import build_server

MODES = ["legacy", "auto"]
ALLOW = Policy(costly="allow", destructive="allow")  # no confirmation: for tests of the requests themselves


@asynccontextmanager
async def connect(
    base_url: str,
    *,
    mode: str = "auto",
    token: str = "sandbox-admin",
    policy: Policy | None = None,
    state_dir: Path | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """An MCP client session with a fresh server in this process (both protocol eras via `mode`).

    `client_options` go to mcp.Client (e.g. elicitation_callback) or, for timeouts, to Settings.
    """
    timeouts = {k: client_options.pop(k) for k in ("connect_timeout", "read_timeout") if k in client_options}
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="relatel-mcp-test-"))
    config = Settings(
        token=token, base_url=base_url, policy=policy or Policy(), state_dir=state_dir, **timeouts
    )
    client = RelatelClient(base_url, connect_timeout=config.connect_timeout, read_timeout=config.read_timeout)
    gate = open_gate(config.policy, state_dir)
    try:
        async with Client(build_server(config, client, gate), mode=mode, **client_options) as session:
            yield session
    finally:
        await client.aclose()
        gate.store.close()


def error_of(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    return result.structured_content["error"]


def wire(result: types.CallToolResult) -> str:
    """Everything a client receives for a result, as one string (for token-hygiene checks)."""
    return json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False)
