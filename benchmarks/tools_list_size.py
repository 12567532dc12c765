"""How much of an agent's context the tool list takes: compact JSON bytes of tools/list.

Two numbers, as received by a real MCP client over JSON-RPC:
  model view  each tool's name, description and inputSchema (what a model is shown)
  full list   everything, with annotations and output schemas
for a client that can ask its user (all 53 tools), one that cannot (the gated tools are not
offered), and with the operator's `preview` opt-in (every tool, the gated ones taking a
confirmation_token); and, against the sandbox, for accounts that lack what some tools need (a
non-admin employee; a company on Switch Starter without the M2M agreement), whose lists leave
those tools out. bytes / 4 is roughly tokens. Run: .venv/bin/python benchmarks/tools_list_size.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anyio
import mcp.types as types
from mcp import Client

from relatel_mcp.app import assemble
from relatel_mcp.front.server import build_server
from relatel_mcp.policy import Policy
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.settings import Settings


def size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def decline(context: object, params: object) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


CASES = {  # (policy, elicitation callback, the sandbox account, or None: every tool listed)
    "a client that can ask its user": (Policy(), decline, None),
    "a client that cannot (default policy)": (Policy(), None, None),
    "--costly preview --destructive preview": (Policy(costly="preview", destructive="preview"), None, None),
    "can ask; a non-admin employee (sandbox-employee)": (Policy(), decline, "sandbox-employee"),
    "can ask; Switch Starter, no M2M (sandbox-starter)": (Policy(), decline, "sandbox-starter"),
}


async def measure(policy: Policy, callback: object, account: str | None, url: str) -> dict[str, int]:
    settings = Settings(token=account or "unused", base_url=url if account else "http://127.0.0.1:9",
                        policy=policy, state_dir=Path(tempfile.mkdtemp()), all_tools=account is None)  # fmt: skip
    async with (
        assemble(settings) as app,
        Client(build_server(app), mode="legacy", elicitation_callback=callback) as session,
    ):
        listed = (await session.list_tools()).tools
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
    with SandboxServer() as sandbox:
        measured = {case: anyio.run(measure, *spec, sandbox.url) for case, spec in CASES.items()}
    for case, values in measured.items():
        print(case)
        for name, value in values.items():
            tokens = f"  (~{value // 4:,} tokens)" if name.endswith("_bytes") else ""
            print(f"  {name:22} {value:>7,}{tokens}")


if __name__ == "__main__":
    main()
