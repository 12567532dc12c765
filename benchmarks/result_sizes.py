"""What a list tool's result costs an agent's context, concise (the default) and with detail full:
the bytes of the text a model reads (what MCP clients put in its context), and of the structured
content, for each list tool called with no arguments against the sandbox's seed data (as
sandbox-admin, who sees every list), through a real MCP client. Prints a Markdown table.
Run: .venv/bin/python benchmarks/result_sizes.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from relatel_mcp.app import assemble
from relatel_mcp.core import catalog
from relatel_mcp.front.server import build_server
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.settings import Settings

ARGUMENTS = {"list_contact_comments": {"contact_id": 1}}  # the lists that need an id
HALF = {"list_calls", "list_voicemails", "list_contacts", "list_messages", "list_chats", "list_smileys",
        "list_employees"}  # fmt: skip  # the issue's: concise at most half of full


def size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


async def measure(url: str) -> list[tuple[str, int, int, int, int]]:
    settings = Settings(
        token="sandbox-admin", base_url=url, state_dir=Path(tempfile.mkdtemp()), rate_per_second=0
    )
    rows = []
    async with assemble(settings) as app, Client(build_server(app), mode="legacy") as session:
        for op in catalog.load():
            if not op.name.startswith("list_"):
                continue
            arguments = ARGUMENTS.get(op.name, {})
            concise = await session.call_tool(op.name, arguments)
            full = await session.call_tool(op.name, {**arguments, "detail": "full"}) if op.cut else concise
            texts = [len(r.content[0].text.encode()) for r in (concise, full)]
            structured = [size(r.structured_content) for r in (concise, full)]
            rows.append((op.name, *texts, *structured))
    return rows


def main() -> None:
    with SandboxServer() as sandbox:
        rows = anyio.run(measure, sandbox.url)
    print("| tool | text, concise | text, full | concise / full | structured, concise | structured, full |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, text, full_text, structured, full_structured in rows:
        ratio = f"{text / full_text:.2f}" if text != full_text else "(one form)"
        mark = " ✗" if name in HALF and text > full_text / 2 else ""
        print(
            f"| `{name}` | {text:,} | {full_text:,} | {ratio}{mark} | {structured:,} | {full_structured:,} |"
        )


if __name__ == "__main__":
    main()
