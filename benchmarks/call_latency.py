"""How fast a tool call is, end to end, in process.

A real MCP client (JSON-RPC over memory streams, the 2025-11-25 era) calls the server, which
talks HTTP to the sandbox on loopback. Prints percentiles of wall time per call for a read, a read
of the largest list (100 calls; concise, and with detail full), and an argument error (nothing
sent). Start-up, memory and the stdio call, against a bare MCP server: benchmarks/against_floor.py.
Run: .venv/bin/python benchmarks/call_latency.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from relatel_mcp.app import assemble
from relatel_mcp.front.server import build_server
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.settings import Settings

CALLS = 300


async def timed(session: Client, tool: str, args: dict, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await session.call_tool(tool, args)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=100)
    print(f"{name:34} p50 {q[49]:6.2f} ms   p95 {q[94]:6.2f} ms   n={len(samples)}")


async def calls(url: str) -> None:
    settings = Settings(
        token="sandbox-admin", base_url=url, state_dir=Path(tempfile.mkdtemp()), rate_per_second=0
    )
    async with (
        assemble(settings) as app,
        Client(build_server(app), mode="legacy") as s,
    ):
        await timed(s, "list_tags", {}, 20)  # warm up
        report("get_current_employee", await timed(s, "get_current_employee", {}, CALLS))
        report("list_calls limit 100, concise", await timed(s, "list_calls", {"limit": 100}, CALLS // 3))
        full = {"limit": 100, "detail": "full"}  # ~40 KB, cut to RELATEL_MCP_MAX_RESULT_BYTES
        report("list_calls limit 100, detail full", await timed(s, "list_calls", full, CALLS // 3))
        report("invalid arguments (nothing sent)", await timed(s, "list_calls", {"limit": 1000}, CALLS))


def main() -> None:
    with SandboxServer() as sandbox:
        anyio.run(calls, sandbox.url)


if __name__ == "__main__":
    main()
