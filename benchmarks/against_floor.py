"""relatel-mcp against the floor (benchmarks/floor_server.py), measured in the same run, over stdio,
in both protocol eras (2025-11-25 `initialize`, 2026-07-28 sessionless):

  start-up   from spawning the process to the answer of the first tools/list
  peak RSS   the server process's high-water mark (VmHWM) after start-up and CALLS calls
  call p50   the median wall time of one tools/call that makes one GET (get_current_employee)

Both talk to the sandbox on loopback (in this process) with the same token. The machine is
shared, so every comparison is paired: start-ups run back to back (in alternating order), and the
two servers' calls alternate within one loop over two open sessions. A round's call difference is
the median of its pairs; which core each process lands on moves that by about ±0.1 ms from one
pair of processes to the next, so there are ROUNDS rounds of fresh processes, and the median round
is reported with the range. relatel-mcp runs as installed (`relatel-mcp`), with its rate limiter off (it
would space the benchmark's own calls) and everything else default, logs included (to /dev/null).
Run: .venv/bin/python benchmarks/against_floor.py

`--floor-tree DIR` measures against an earlier relatel-mcp instead of the bare server, paired the
same way: DIR is a checkout of that commit (`git worktree add /tmp/before <commit>`), run with
this environment's packages. What a change costs is then told apart from the machine's load.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp.client.stdio as stdio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from relatel_mcp.sandbox import SandboxServer

RUNS = 15
ROUNDS, CALLS = 5, 300  # call pairs per round; each round starts both servers afresh
ERAS = {"2025-11-25": "legacy", "2026-07-28": "auto"}
HERE = Path(__file__).resolve().parent
SERVERS = {
    "floor": [sys.executable, str(HERE / "floor_server.py")],
    "relatel-mcp": [str(Path(sys.executable).with_name("relatel-mcp"))],
}

spawned: list[Any] = []
_spawn = stdio._create_platform_compatible_process


async def _remember(*args: Any, **kwargs: Any) -> Any:
    process = await _spawn(*args, **kwargs)
    spawned.append(process)
    return process


stdio._create_platform_compatible_process = _remember  # to read the server's own memory


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


@contextlib.asynccontextmanager
async def session(server: str, mode: str, env: dict[str, str]) -> AsyncIterator[tuple[Client, float, int]]:
    """A client of a freshly started server: (session, seconds to the first tools/list, pid)."""
    command, *args = SERVERS[server]
    params = StdioServerParameters(command=command, args=args, env=env)
    with open(os.devnull, "w") as quiet:
        started = time.perf_counter()
        async with Client(stdio_client(params, errlog=quiet), mode=mode) as client:
            await client.list_tools()
            yield client, time.perf_counter() - started, spawned[-1].pid


async def start_ups(mode: str, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in SERVERS}
    for run in range(RUNS):
        for name in SERVERS if run % 2 else reversed(SERVERS):
            async with session(name, mode, env) as (_, seconds, _):
                times[name].append(seconds)
    return times


async def calls(mode: str, env: dict[str, str]) -> dict[str, Any]:
    """One round: both servers started afresh, CALLS calls each, alternating."""
    async with session("floor", mode, env) as floor, session("relatel-mcp", mode, env) as ours:
        clients = {"floor": floor[0], "relatel-mcp": ours[0]}
        samples: dict[str, list[float]] = {name: [] for name in SERVERS}
        for i in range(CALLS + 50):
            for name in SERVERS if i % 2 else reversed(SERVERS):
                began = time.perf_counter()
                result = await clients[name].call_tool("get_current_employee", {})
                if i >= 50:  # after warming up
                    samples[name].append((time.perf_counter() - began) * 1000)
                assert not result.is_error
        era = {name: client.protocol_version for name, client in clients.items()}
        rss = {"floor": peak_rss_mb(floor[2]), "relatel-mcp": peak_rss_mb(ours[2])}
    pairs = [o - f for f, o in zip(samples["floor"], samples["relatel-mcp"], strict=True)]
    return {"era": era, "samples": samples, "rss": rss, "difference": statistics.median(pairs)}


async def measure(url: str) -> dict[str, dict[str, Any]]:
    env = {
        "RELATEL_TOKEN": "sandbox-admin",
        "RELATEL_BASE_URL": url,
        "RELATEL_MCP_STATE_DIR": tempfile.mkdtemp(prefix="relatel-mcp-bench-"),
        "RELATEL_MCP_RATE_PER_SECOND": "0",
    }
    results = {}
    for era, mode in ERAS.items():
        rounds = [await calls(mode, env) for _ in range(ROUNDS)]
        assert {v for r in rounds for v in r["era"].values()} == {era}
        results[era] = {
            "start_up": await start_ups(mode, env),
            "samples": {name: [x for r in rounds for x in r["samples"][name]] for name in SERVERS},
            "rss": {name: max(r["rss"][name] for r in rounds) for name in SERVERS},
            "differences": sorted(r["difference"] for r in rounds),
        }
    return results


def main() -> None:
    if sys.argv[1:2] == ["--floor-tree"]:  # an earlier checkout of relatel-mcp in the floor's place
        tree = str(Path(sys.argv[2]).resolve())
        start = f"import sys; sys.path.insert(0, {tree!r}); from relatel_mcp.cli import main; main()"
        SERVERS["floor"] = [sys.executable, "-c", start]
    with SandboxServer() as sandbox:
        results = anyio.run(measure, sandbox.url)
    median = statistics.median
    print(f"{'era':11} {'server':12} {'start-up':>9} {'peak RSS':>9} {'call p50':>9} {'call p95':>9}")
    for era, r in results.items():
        for name in SERVERS:
            q = statistics.quantiles(r["samples"][name], n=100)
            print(
                f"{era:11} {name:12} {median(r['start_up'][name]) * 1000:7.0f}ms "
                f"{r['rss'][name]:7.1f}MB {q[49]:7.2f}ms {q[94]:7.2f}ms"
            )
    for era, r in results.items():
        starts = [ours - floor for floor, ours in zip(*r["start_up"].values(), strict=True)]
        rounds = r["differences"]
        print(
            f"{era}: relatel-mcp - floor = {median(starts):+.3f} s start-up (median of {len(starts)} pairs), "
            f"{r['rss']['relatel-mcp'] - r['rss']['floor']:+.1f} MB peak RSS, call p50 {median(rounds):+.2f} ms "
            f"(median of {len(rounds)} rounds of {CALLS} pairs; rounds {rounds[0]:+.2f} to {rounds[-1]:+.2f})"
        )


if __name__ == "__main__":
    main()
