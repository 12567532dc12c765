"""How much of an agent's context the tool list takes: compact JSON bytes of tools/list.

Two numbers, for all tools, as received by a real MCP client over JSON-RPC:
  model view  each tool's name, description and inputSchema (what a model is shown)
  full list   everything, with annotations and output schemas
bytes / 4 is roughly tokens. Run: .venv/bin/python benchmarks/tools_list_size.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from relatel_mcp.client import RelatelClient
from relatel_mcp.config import Settings
from relatel_mcp.policy import open_gate
from relatel_mcp.server import build_server


def size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def measure() -> dict[str, int]:
    """With the default policy: costly and destructive tools take a confirmation_token."""
    settings = Settings(token="unused", state_dir=Path(tempfile.mkdtemp()))
    client = RelatelClient("http://127.0.0.1:9")
    gate = open_gate(settings.policy, settings.state_dir)
    try:
        async with Client(build_server(settings, client, gate), mode="legacy") as session:
            listed = (await session.list_tools()).tools
    finally:
        await client.aclose()
        gate.store.close()
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed]
    view = [{k: t[k] for k in ("name", "description", "inputSchema")} for t in tools]
    return {
        "tools": len(tools),
        "model_view_bytes": size(view),
        "full_list_bytes": size(tools),
        "input_schema_bytes": sum(size(t["inputSchema"]) for t in tools),
        "output_schema_bytes": sum(size(t["outputSchema"]) for t in tools if "outputSchema" in t),
        "annotation_bytes": sum(size(t["annotations"]) for t in tools),
        "description_bytes": sum(len(t["description"].encode()) for t in tools),
    }


def main() -> None:
    numbers = anyio.run(measure)
    for name, value in numbers.items():
        tokens = f"  (~{value // 4:,} tokens)" if name.endswith("_bytes") else ""
        print(f"{name:22} {value:>7,}{tokens}")


if __name__ == "__main__":
    main()
