"""Stopping the server as MCP clients, terminals and supervisors do, with the real `relatel-mcp`
as a subprocess: stdin closed (stdio), SIGINT, SIGTERM, and Ctrl-C typed at a terminal (a
pseudo-terminal: the line discipline sends SIGINT). Every mode ends on the first of each, with
stdin still open and without a second signal; quietly (no traceback); with 0 after stdin closed,
128 + the signal's number after a signal; and a sandbox trial's throwaway state directory gone.

How long each stop took is recorded in the failure message, never asserted as a bound: the
promise is that the server ends by itself, which a hang (as before: only the next line on stdin
or EOF ended a stdio server) breaks whatever the machine's load."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from .hygiene import HYGIENE
from .support import EXE, INITIALIZE, env

pytestmark = pytest.mark.slow

PATIENCE = 10.0  # seconds a stop may take before the test calls it a hang (it takes well under 1)

MODES = {  # name -> the command line after `relatel-mcp serve`, and whether it needs the sandbox fixture
    "stdio": ([], True),
    "stdio --sandbox": (["--sandbox"], False),
    "http": (["--transport", "http", "--auth", "none", "--port", "0"], True),
    "sse": (["--transport", "sse", "--auth", "none", "--port", "0"], True),
    "http --sandbox": (["--sandbox", "--transport", "http", "--auth", "none", "--port", "0"], False),
}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    said: list[str]  # stderr lines read while starting
    url: str | None = None  # HTTP
    throwaway: Path | None = None  # a sandbox trial's state directory
    terminal: int | None = None  # the pseudo-terminal's controlling side, if on one

    def ended(self) -> tuple[int | None, float]:
        """The exit status (None: still running after PATIENCE) and how long it took."""
        start = time.monotonic()
        try:
            status: int | None = self.process.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            status = None
        return status, time.monotonic() - start

    def stderr(self) -> str:
        """All it said (scanned for credentials), once it has ended."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(PATIENCE)
        rest = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
        said = "\n".join(self.said) + "\n" + rest
        HYGIENE.scan_stderr(" ".join(map(str, self.process.args)), said)
        return said


def start(mode: str, base_url: str | None, *, terminal: bool = False) -> Server:
    """`relatel-mcp serve` in `mode`, once it serves: a stdio server has answered initialize, an
    HTTP one has an SSE stream open (a client connected, which uvicorn would wait for)."""
    args, needs_upstream = MODES[mode]
    environment = env(RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=base_url) if needs_upstream else env()
    controlling = None
    if terminal:  # stdin is a terminal whose Ctrl-C goes to the server's process group
        controlling, stdin = pty.openpty()
    else:
        stdin = subprocess.PIPE
    process = subprocess.Popen(
        [EXE, "serve", *args], env=environment, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=terminal, preexec_fn=_take_terminal if terminal else None,
    )  # fmt: skip
    if terminal:
        os.close(stdin)
    server = Server(process, [], terminal=controlling)
    if "--transport" not in args:
        _send(server, INITIALIZE)
        assert process.stdout is not None
        answer = json.loads(process.stdout.readline())
        assert answer["result"]["serverInfo"]["name"] == "relatel-mcp", answer
    if "--sandbox" in args or "--transport" in args:
        _read_start_up(server, http="--transport" in args, sandbox="--sandbox" in args)
    return server


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the new session's controlling terminal: stdin


def _send(server: Server, message: dict) -> None:
    line = (json.dumps(message) + "\n").encode()
    if server.terminal is not None:
        os.write(server.terminal, line)
    else:
        assert server.process.stdin is not None
        server.process.stdin.write(line)
        server.process.stdin.flush()


def _read_start_up(server: Server, *, http: bool, sandbox: bool) -> None:
    assert server.process.stderr is not None
    while (http and server.url is None) or (sandbox and server.throwaway is None):
        line = server.process.stderr.readline().decode()
        assert line, f"the server stopped: {server.said}"
        server.said.append(line.rstrip("\n"))
        if found := re.search(r"kept in (\S+)\.$", line):
            server.throwaway = Path(found.group(1))
        if found := re.search(r"serving MCP at (http://127\.0\.0\.1:\d+)/", line):
            server.url = found.group(1)


def _stream(url: str) -> httpx2.Response:
    """An open SSE stream: a connected client whose response never finishes by itself."""
    client = httpx2.Client(timeout=PATIENCE)
    response = client.send(client.build_request("GET", f"{url}/sse"), stream=True)
    assert response.status_code == 200
    return response


def check_stopped(server: Server, how: str, expected: int) -> None:
    status, took = server.ended()
    stderr = server.stderr()
    assert status is not None, f"{how}: still running {PATIENCE:g} s later (stdin open, no second signal)"
    assert status == expected, f"{how}: exit status {status} after {took:.2f} s\n{stderr}"
    assert "Traceback" not in stderr and "Error" not in stderr, f"{how}: not quiet\n{stderr}"
    if server.throwaway is not None:
        assert server.throwaway.is_absolute() and not server.throwaway.exists(), f"{how}: trial state kept"
    print(f"{how}: exit {status} in {took:.2f} s")  # seen with -s


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("stop", "expected"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_every_mode_at_once_with_stdin_open(sandbox, mode, stop, expected):
    server = start(mode, sandbox.url)
    stream = _stream(server.url) if server.url else None
    try:
        os.kill(server.process.pid, getattr(signal, stop))
        check_stopped(server, f"{mode} {stop}", expected)
    finally:
        if stream is not None:
            stream.close()


@pytest.mark.parametrize("mode", ["stdio", "stdio --sandbox"])
def test_closing_stdin_ends_a_stdio_server_with_0(sandbox, mode):
    server = start(mode, sandbox.url)
    assert server.process.stdin is not None
    server.process.stdin.close()
    check_stopped(server, f"{mode} stdin closed", 0)


@pytest.mark.parametrize("mode", ["stdio", "stdio --sandbox"])
def test_ctrl_c_at_a_terminal_stops_the_try_it_server(sandbox, mode):
    """`relatel-mcp serve --sandbox` typed at a shell: one Ctrl-C ends it, no Enter needed."""
    server = start(mode, sandbox.url, terminal=True)
    assert server.terminal is not None
    try:
        os.write(server.terminal, termios.tcgetattr(server.terminal)[6][termios.VINTR])  # Ctrl-C
        check_stopped(server, f"{mode} Ctrl-C", 130)
    finally:
        os.close(server.terminal)
