"""Scale-out on this machine: calls per second through nginx with 1 and with 3 stateless replicas
(one shared PostgreSQL), and the latency a shared store adds to a gated call (PostgreSQL vs SQLite).

Everything runs on the same 2-core machine: nginx, the replicas, PostgreSQL, the sandbox (as its
own process, the upstream of every call) and the load generator, so more replicas cannot add
cores here; what the 3-replica number shows is that round-robin over stateless replicas costs
nothing and that one process was not the limit. The load is 2026-07-28 `tools/call` requests
(`list_tags`, one upstream GET each), sent raw by 32 concurrent connections for 10 s.

Needs PostgreSQL and nginx (as the scale-out tests do). Run: .venv/bin/python benchmarks/scale_out.py
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services import Nginx, Postgres, free_port, stop_pid  # noqa: E402

EXE = str(Path(sys.executable).with_name("relatel-mcp"))
SECRET = "benchmark-secret-of-at-least-32-characters"
SECONDS, CONNECTIONS = 10.0, 32
CALL = {
    "jsonrpc": "2.0", "id": 1, "method": "tools/call",
    "params": {"name": "list_tags", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}},
}  # fmt: skip
HEADERS = {
    "Authorization": "Bearer sandbox-admin", "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call", "Mcp-Name": "list_tags",
}  # fmt: skip


@contextmanager
def process(command: list[str], env: dict[str, str] | None = None, ready: str | None = None) -> Any:
    # Output nobody reads goes nowhere: a full pipe would stop the process at its next log line.
    output = subprocess.PIPE if ready else subprocess.DEVNULL
    proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        if ready:
            while ready not in (line := proc.stdout.readline()):
                if not line:
                    raise RuntimeError(f"{command[:2]} exited")
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # the rest, unread
            yield line
        else:
            yield None
    finally:
        stop_pid(proc.pid)
        proc.wait(10)


def wait_healthy(url: str) -> None:
    for _ in range(300):
        try:
            httpx2.get(f"{url}/healthz", timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise RuntimeError(url)


async def load(url: str) -> tuple[float, int]:
    done, errors = 0, 0
    deadline = time.monotonic() + SECONDS
    limits = httpx2.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx2.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as http:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline:
                response = await http.post("/mcp", json=CALL)
                ok = response.status_code == 200 and '"isError":true' not in response.text
                done, errors = done + ok, errors + (not ok)

        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            for _ in range(CONNECTIONS):
                tasks.start_soon(worker)
        return done / (time.monotonic() - started), errors


def throughput(replicas: int, sandbox: str, store: str, scratch: Path) -> tuple[float, int]:
    env = {**os.environ, "RELATEL_BASE_URL": sandbox, "RELATEL_MCP_STORE": store, "RELATEL_MCP_SECRET": SECRET,
           "RELATEL_MCP_RATE_PER_SECOND": "0"}  # fmt: skip
    ports = [free_port() for _ in range(replicas)]
    with ExitStack() as stack:
        for i, port in enumerate(ports):
            stack.enter_context(process(
                [EXE, "serve", "--transport", "http", "--stateless", "--auth", "passthrough", "--port", str(port),
                 "--max-connections-per-client", "1000"],
                {**env, "RELATEL_MCP_STATE_DIR": str(scratch / f"r{replicas}-{i}")},
            ))  # fmt: skip
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}")
        nginx = Nginx([f"127.0.0.1:{p}" for p in ports], ROOT / "deploy" / "relatel-mcp.locations.conf")
        try:
            anyio.run(load, nginx.url)  # warm-up run of the same length is not needed: measure twice
            return anyio.run(load, nginx.url)
        finally:
            nginx.stop()


async def gated_latency(sandbox: str, store: str | None, scratch: Path) -> dict[str, float]:
    from mcp import Client

    from relatel_mcp.app import assemble
    from relatel_mcp.front.server import build_server
    from relatel_mcp.policy import Policy
    from relatel_mcp.policy.rules import Budgets
    from relatel_mcp.settings import Settings

    settings = Settings(
        token="sandbox-admin", base_url=sandbox, state_dir=scratch, store=store, secret=SECRET,
        rate_per_second=0, policy=Policy(costly="allow", budgets=Budgets(calls=100_000)),
    )  # fmt: skip
    samples: dict[str, list[float]] = {"read": [], "gated": []}
    async with assemble(settings) as app, Client(build_server(app), mode="legacy") as client:
        for i in range(330):
            for kind, tool, args in (
                ("read", "list_tags", {}),
                ("gated", "initiate_call", {"to_number": "+45 28 11 44 77"}),
            ):
                started = time.perf_counter()
                result = await client.call_tool(tool, args)
                if i >= 30:  # warm-up
                    samples[kind].append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result
    quantiles = {k: statistics.quantiles(v, n=100) for k, v in samples.items()}
    return {f"{k} p50": q[49] for k, q in quantiles.items()} | {
        f"{k} p95": q[94] for k, q in quantiles.items()
    }


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="relatel-mcp-bench-"))
    postgres = Postgres().start()
    try:
        with process([EXE, "sandbox", "--port", "0"], ready="Relatel sandbox at") as line:
            sandbox = re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)
            wait_healthy(sandbox)
            store = postgres.create_database("bench")
            for replicas in (1, 3):
                rate, errors = throughput(replicas, sandbox, store, scratch)
                print(
                    f"through nginx, {replicas} replica{'s' * (replicas > 1)}: {rate:7.1f} calls/s ({errors} errors)"
                )
            for name, url in (("SQLite", None), ("PostgreSQL", postgres.create_database("latency"))):
                numbers = anyio.run(gated_latency, sandbox, url, scratch / name)
                print(f"{name:10} " + "  ".join(f"{k} {v:5.2f} ms" for k, v in numbers.items()))
    finally:
        postgres.remove()
    print(json.dumps({"cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
