"""What traces cost a tool call: relatel-mcp over stdio with tracing off (no OTEL_* set: no SDK
imported, no span started) and on (the `otel` extra's SDK, a BatchSpanProcessor with its default
batching and the OTLP/HTTP exporter, sending to a receiver on loopback in this process,
tests/otlp.py), against the same server with its tracing calls taken out ("stripped": every helper
of relatel_mcp/core/traces.py that starts a span hands back the shared do-nothing context at once,
as if the calls were not there). The SDK's own `tools/call` span is the same in all three: it is
not ours to take out.

Two calls: a read (`get_current_employee`: one upstream GET; 4 spans of ours) and a gated call
the policy lets through (`initiate_call` under `--costly allow`, with a budget that does not run
out: the facts' read, the budget, the audit's intent, the POST, its outcome; 9 spans of ours).

Measured in the same run and paired: each round starts the three servers afresh for each call,
warms them up, then calls them in turn (the order rotating) CALLS times. Two measures:

  wall     the client's time per call; a round's difference is the median of its pairs
  CPU      the server process's own CPU time per call (all its threads, the exporter's too, from
           /proc/<pid>/task/*/schedstat), from the first timed call until the receiver has every
           span of the round's calls (the batch is exported in the background)

The machine is shared, so wall time moves with whatever else runs; CPU time much less. The
median round is reported with the range. Everything else is default, logs included (to
/dev/null), the rate limiter off. Run: .venv/bin/python benchmarks/tracing_overhead.py
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' OTLP receiver
from tests.otlp import Receiver, otlp_receiver

ROUNDS, CALLS, WARM_UP = 5, 200, 30
CALLS_OF = {
    "read": ("get_current_employee", {}),
    "gated": ("initiate_call", {"to_number": "+45 28 11 44 77"}),
}
STRIP = (
    "from relatel_mcp.core import traces; "
    "traces.span = traces.tool_call = traces.gate = traces.upstream = lambda *a, **k: traces.NO_SPAN; "
    "traces.event = traces.note = lambda *a, **k: None; "
    "from relatel_mcp.cli import main; main()"
)
EXE = str(Path(sys.executable).with_name("relatel-mcp"))
SERVERS = {"stripped": [sys.executable, "-c", STRIP], "off": [EXE], "on": [EXE]}

spawned: list[Any] = []
_spawn = stdio._create_platform_compatible_process


async def _remember(*args: Any, **kwargs: Any) -> Any:
    process = await _spawn(*args, **kwargs)
    spawned.append(process)
    return process


stdio._create_platform_compatible_process = _remember  # to read the server's own CPU time


def cpu_ns(pid: int) -> int:
    """The CPU time of every thread of the process so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


@contextlib.asynccontextmanager
async def session(name: str, env: dict[str, str], policy: Path) -> AsyncIterator[tuple[Client, int]]:
    command, *args = SERVERS[name]
    params = StdioServerParameters(
        command=command, args=[*args, "serve", "--costly", "allow", "--config", str(policy)], env=env
    )
    with open(os.devnull, "w") as quiet:
        async with Client(stdio_client(params, errlog=quiet), mode="legacy") as client:
            yield client, spawned[-1].pid


async def one_round(
    envs: dict[str, dict[str, str]], policy: Path, receiver: Receiver, kind: str, turn: int
) -> dict[str, dict[str, Any]]:
    """The three servers started afresh; CALLS timed calls of `kind` to each, in rotating order."""
    tool, arguments = CALLS_OF[kind]
    exported = f"tools/call {tool}"  # the last span of a call to end: the SDK's
    names = list(SERVERS)
    wall: dict[str, list[float]] = {name: [] for name in SERVERS}
    async with contextlib.AsyncExitStack() as stack:
        opened = {
            name: await stack.enter_async_context(session(name, envs[name], policy)) for name in SERVERS
        }
        for _ in range(WARM_UP):
            for name in names:
                await opened[name][0].call_tool(tool, arguments)
        before = {name: cpu_ns(pid) for name, (_, pid) in opened.items()}
        for i in range(CALLS):
            order = names[(i + turn) % 3 :] + names[: (i + turn) % 3]
            for name in order:
                began = time.perf_counter()
                result = await opened[name][0].call_tool(tool, arguments)
                wall[name].append((time.perf_counter() - began) * 1000)
                assert not result.is_error, (name, tool, result)
        expected[kind] += WARM_UP + CALLS
        deadline = time.monotonic() + 60
        while arrived(receiver, exported) < expected[kind]:  # the batch goes out in the background
            assert time.monotonic() < deadline, "the spans did not arrive"
            await anyio.sleep(0.05)
        cpu = {name: (cpu_ns(pid) - before[name]) / CALLS / 1000 for name, (_, pid) in opened.items()}
    return {name: {"wall": wall[name], "cpu_us": cpu[name]} for name in SERVERS}


expected = dict.fromkeys(CALLS_OF, 0)  # calls of each tool made to the server with tracing on


def arrived(receiver: Receiver, name: str) -> int:
    """How many spans of this name the receiver has been sent."""
    exports = list(receiver.exports)
    return sum(
        span.name == name
        for export in exports
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    )


async def measure(url: str, receiver: Receiver) -> dict[str, list[dict[str, dict[str, Any]]]]:
    scratch = Path(tempfile.mkdtemp(prefix="relatel-mcp-bench-"))
    policy = scratch / "policy.toml"
    policy.write_text("[budgets]\ncalls = 1000000\n", encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELATEL", "OTEL_"))}
    base |= {"RELATEL_TOKEN": "sandbox-admin", "RELATEL_BASE_URL": url, "RELATEL_MCP_RATE_PER_SECOND": "0"}
    envs = {name: {**base, "RELATEL_MCP_STATE_DIR": str(scratch / name)} for name in SERVERS}
    envs["on"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {kind: [] for kind in CALLS_OF}
    for turn in range(ROUNDS):
        for kind in CALLS_OF:
            rounds[kind].append(await one_round(envs, policy, receiver, kind, turn))
    return rounds


def main() -> None:
    load = os.getloadavg()[0]
    with SandboxServer() as sandbox, otlp_receiver() as receiver:
        results = anyio.run(measure, sandbox.url, receiver)
        spans = receiver.spans()
    median = statistics.median
    print(
        f"load average (1 min) {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores"
    )
    ours = sum(s.scope == "relatel_mcp" for s in spans)
    print(f"spans received: {len(spans)} ({ours} of relatel_mcp), all from the server with tracing on")
    for kind, rounds in results.items():
        print(f"\n{kind}: {CALLS_OF[kind][0]}, {ROUNDS} rounds of {CALLS} calls to each server")
        for name in SERVERS:
            q = statistics.quantiles([x for r in rounds for x in r[name]["wall"]], n=100)
            cpu = median(r[name]["cpu_us"] for r in rounds)
            print(
                f"  {name:9} wall p50 {q[49]:6.2f} ms  p95 {q[94]:6.2f} ms   server CPU {cpu:6.0f} µs a call"
            )
        for a, b in (("off", "stripped"), ("on", "stripped"), ("on", "off")):
            walls = sorted(
                median([y - x for x, y in zip(r[b]["wall"], r[a]["wall"], strict=True)]) * 1000
                for r in rounds
            )
            cpus = sorted(r[a]["cpu_us"] - r[b]["cpu_us"] for r in rounds)
            print(
                f"  {a} - {b}: wall {median(walls):+5.0f} µs (rounds {walls[0]:+.0f} to {walls[-1]:+.0f}), "
                f"server CPU {median(cpus):+5.0f} µs (rounds {cpus[0]:+.0f} to {cpus[-1]:+.0f})"
            )


if __name__ == "__main__":
    main()
