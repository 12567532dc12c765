"""How fast a tool call is, end to end, and what the server costs to start and to keep.

A real MCP client (JSON-RPC over memory streams, the 2025-11-25 era) calls the server, which
talks HTTP to the sandbox on loopback. Prints percentiles of wall time per call for a read, a read
of the largest list (100 calls), an argument error (nothing sent), and the stdio start-up time of
`relatel-mcp` to its first tools/list; and the RSS after the run.
Run: .venv/bin/python benchmarks/call_latency.py
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from relatel_mcp.config import Settings
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.server import build_server, services

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
        services(settings) as shared,
        Client(build_server(settings, shared), mode="legacy") as s,
    ):
        await timed(s, "list_tags", {}, 20)  # warm up
        report("get_current_employee", await timed(s, "get_current_employee", {}, CALLS))
        report("list_calls (limit 100, ~40 KB)", await timed(s, "list_calls", {"limit": 100}, CALLS // 3))
        report("invalid arguments (nothing sent)", await timed(s, "list_calls", {"limit": 1000}, CALLS))


async def startup(url: str) -> None:
    env = {
        "RELATEL_TOKEN": "sandbox-admin",
        "RELATEL_BASE_URL": url,
        "RELATEL_MCP_STATE_DIR": tempfile.mkdtemp(),
    }
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        params = StdioServerParameters(command=str(Path(sys.executable).with_name("relatel-mcp")), env=env)
        async with Client(params, mode="legacy") as session:
            await session.list_tools()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"{'stdio start-up to first tools/list':34} median {statistics.median(samples):6.0f} ms   n=5")


def main() -> None:
    with SandboxServer() as sandbox:
        anyio.run(calls, sandbox.url)
        anyio.run(startup, sandbox.url)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'max RSS (benchmark + sandbox)':34} {rss:6.0f} MB")


if __name__ == "__main__":
    main()
