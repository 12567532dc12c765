"""Memory per streamable-HTTP session: relatel-mcp beside the bare server, measured in the same run.

Both run as their own processes on loopback and are measured by their resident memory (VmRSS in
/proc/<pid>/status; nothing inside them is instrumented):

  bare         a low-level mcp `Server` with one trivial tool, served by the SDK's
               StreamableHTTPSessionManager (its defaults) under uvicorn (h11, as relatel-mcp):
               this file run with `--serve-bare PORT`
  relatel-mcp  `relatel-mcp serve --transport http --auth none` as installed, with the sandbox's
               token against a sandbox in this process, a private state directory, its rate
               limiter off, --max-sessions 400 (above the 200 held open) and everything else
               default, logs included (to /dev/null)

Each session is what a 2025-11-25 client does, sent raw (httpx2, from this process, so that no
client is in a measured process), one session after another over one connection: `initialize`,
`notifications/initialized`, `tools/list`, kept open; closed with `DELETE /mcp` and its
`Mcp-Session-Id`, as clients end a session. The client declares no capabilities (no
elicitation), as many do.

For each server, after a warm-up of WARM_UP sessions opened and closed (first-use imports and
caches, such as what the account can use):

  idle         RSS
  open         RSS with SESSIONS sessions open; per session = (open - idle) / SESSIONS
  closed       RSS once those are closed
  round 1..5   RSS after each of ROUNDS rounds of SESSIONS sessions opened (all held) and closed
  growth       round 5 - round 1

Each step waits SETTLE seconds before reading RSS. The machine is shared, so the two servers are
paired: every repetition starts both afresh and runs each step on both, one after the other (in
alternating order); REPEATS repetitions, medians reported with the range. The bare server's own
growth in the same run is the noise floor against which relatel-mcp's growth is read.
Run: .venv/bin/python benchmarks/session_memory.py

`--before-tree DIR` also measures an earlier relatel-mcp in the same repetitions (a third
process, paired the same way): DIR holds that commit's relatel_mcp/ (`git archive <commit>
relatel_mcp | tar -x -C DIR`), run with this environment's packages.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import httpx2

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("relatel-mcp"))
SESSIONS, ROUNDS, REPEATS, WARM_UP = 200, 5, 5, 5
SETTLE = 1.0  # seconds between the last request of a step and reading RSS
VERSION = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}  # fmt: skip
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


# ------------------------------------------------------------------------------ the bare server


def serve_bare(port: int) -> None:
    """The least a streamable-HTTP MCP server on this SDK is: one tool, the manager's defaults."""
    import contextlib

    import mcp.types as types
    import uvicorn
    from mcp.server import Server, ServerRequestContext
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    tool = types.Tool(
        name="echo", description="Say it back.", input_schema={"type": "object", "properties": {}}
    )

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(text="echo")])

    manager = StreamableHTTPSessionManager(
        app=Server("bare", on_list_tools=list_tools, on_call_tool=call_tool)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app = Starlette(routes=[Route("/mcp", StreamableHTTPASGIApp(manager))], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, http="h11", loop="asyncio", log_level="warning")


# ------------------------------------------------------------------------------ measuring


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started(command: list[str], env: dict[str, str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                httpx2.get(f"{url}/mcp", timeout=1)  # any answer: it is listening
                break
            except httpx2.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} exited with {process.returncode}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(15)


async def open_session(http: httpx2.AsyncClient) -> str:
    answer = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    session = {**HEADERS, "Mcp-Session-Id": answer.headers["mcp-session-id"], "MCP-Protocol-Version": VERSION}
    assert (await http.post("/mcp", json=INITIALIZED, headers=session)).status_code == 202
    listed = await http.post("/mcp", json=LIST, headers=session)
    assert listed.status_code == 200 and '"tools"' in listed.text, listed.text
    return session["Mcp-Session-Id"]


async def close_sessions(http: httpx2.AsyncClient, sessions: list[str]) -> None:
    for session in sessions:
        answer = await http.delete("/mcp", headers={**HEADERS, "Mcp-Session-Id": session,
                                                     "MCP-Protocol-Version": VERSION})  # fmt: skip
        assert answer.status_code == 200, answer.text
    sessions.clear()


class Subject:
    """One server process under test, its client connection and the sessions it holds open."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], url: str) -> None:
        self.name, self.pid = name, process.pid
        self.http = httpx2.AsyncClient(base_url=url, timeout=30)
        self.open: list[str] = []

    async def step(self, opening: int, closing: bool) -> float:
        for _ in range(opening):
            self.open.append(await open_session(self.http))
        if closing:
            await close_sessions(self.http, self.open)
        await anyio.sleep(SETTLE)
        return rss_mb(self.pid)


STEPS = [("warm-up", WARM_UP, True), ("idle", 0, False), ("open", SESSIONS, False), ("closed", 0, True)]
STEPS += [(f"round {i}", SESSIONS, True) for i in range(1, ROUNDS + 1)]


async def repetition(subjects: list[Subject], order: int) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {s.name: {} for s in subjects}
    for name, opening, closing in STEPS:
        for subject in subjects if order % 2 else reversed(subjects):
            found[subject.name][name] = await subject.step(opening, closing)
    for subject in subjects:
        await subject.http.aclose()
    return found


def commands(ports: list[int], repeat: int, scratch: Path, tree: Path | None) -> dict[str, list[str]]:
    ours = ["serve", "--transport", "http", "--auth", "none", "--port", str(ports[0]), "--max-sessions", "400",
            "--state-dir", str(scratch / f"state-{repeat}")]  # fmt: skip
    found = {
        "bare": [sys.executable, __file__, "--serve-bare", str(ports[1])],
        "relatel-mcp": [EXE, *ours],
    }
    if tree is not None:  # an earlier checkout, run with this environment's packages
        start = f"import sys; sys.path.insert(0, {str(tree)!r}); from relatel_mcp.cli import main; main()"
        before = [*ours[:-1], str(scratch / f"before-{repeat}")]
        before[before.index("--port") + 1] = str(ports[2])
        found["before"] = [sys.executable, "-c", start, *before]
    return found


def run(tree: Path | None) -> dict[str, list[dict[str, float]]]:
    from relatel_mcp.sandbox import SandboxServer

    scratch = Path(tempfile.mkdtemp(prefix="relatel-mcp-bench-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELATEL")}
    results: dict[str, list[dict[str, float]]] = {}
    with SandboxServer() as sandbox:
        env = {**base, "RELATEL_TOKEN": "sandbox-admin", "RELATEL_BASE_URL": sandbox.url,
               "RELATEL_MCP_RATE_PER_SECOND": "0"}  # fmt: skip
        for repeat in range(REPEATS):
            with ExitStack() as stack:
                subjects = []
                ports = [free_port() for _ in range(3)]
                for name, command in commands(ports, repeat, scratch, tree).items():
                    port = command[command.index("--port") + 1] if "--port" in command else command[-1]
                    url = f"http://127.0.0.1:{port}"
                    subjects.append(Subject(name, stack.enter_context(started(command, env, url)), url))
                found = anyio.run(repetition, subjects, repeat)
            for name, steps in found.items():
                results.setdefault(name, []).append(steps)
            print(f"repetition {repeat + 1}: " + "; ".join(
                f"{n} idle {s['idle']:.1f} open {s['open']:.1f} closed {s['closed']:.1f} last round {s[STEPS[-1][0]]:.1f} MB"
                for n, s in found.items()), flush=True)  # fmt: skip
    return results


def report(results: dict[str, list[dict[str, float]]]) -> None:
    def figures(runs: list[dict[str, float]]) -> dict[str, list[float]]:
        rows: dict[str, list[float]] = {"idle MB": [r["idle"] for r in runs]}
        rows["per open session KB"] = [(r["open"] - r["idle"]) * 1024 / SESSIONS for r in runs]
        rows["after close, over idle MB"] = [r["closed"] - r["idle"] for r in runs]
        for i in range(1, ROUNDS + 1):
            rows[f"after round {i}, over idle MB"] = [r[f"round {i}"] - r["idle"] for r in runs]
        rows[f"growth, round {ROUNDS} - round 1 MB"] = [r[f"round {ROUNDS}"] - r["round 1"] for r in runs]
        return rows

    table = {name: figures(runs) for name, runs in results.items()}
    print(
        f"\n{f'median (min to max), {REPEATS} paired repetitions':40} " + " ".join(f"{n:>26}" for n in table)
    )
    for row in table["bare"]:
        cells = []
        for name in table:
            values = sorted(table[name][row])
            cells.append(f"{statistics.median(values):8.2f} ({values[0]:.2f} to {values[-1]:.2f})".rjust(26))
        print(f"{row:40} " + " ".join(cells))
    growth = f"growth, round {ROUNDS} - round 1 MB"
    for name in table:
        if name == "bare":
            continue
        ratios = sorted(o / b for b, o in zip(table["bare"]["per open session KB"],
                                               table[name]["per open session KB"], strict=True))  # fmt: skip
        print(f"per open session, {name} / bare: {statistics.median(ratios):.2f} "
              f"(pairs {ratios[0]:.2f} to {ratios[-1]:.2f})")  # fmt: skip
        more = sorted(o - b for b, o in zip(table["bare"][growth], table[name][growth], strict=True))
        print(
            f"growth, {name} - bare: {statistics.median(more):+.2f} MB (pairs {more[0]:+.2f} to {more[-1]:+.2f})"
        )
    print(json.dumps(results))


def main() -> None:
    if sys.argv[1:2] == ["--serve-bare"]:
        serve_bare(int(sys.argv[2]))
        return
    sys.path.insert(0, str(ROOT))
    tree = Path(sys.argv[2]).resolve() if sys.argv[1:2] == ["--before-tree"] else None
    report(run(tree))


if __name__ == "__main__":
    main()
