"""The command line as a new user meets it, run as a subprocess: start-up errors are one line that
says what to change (exit 2, no traceback), a mistyped command or option gets the close match,
`serve --sandbox` keeps its state apart from real use, and stderr carries one JSON line per tool
call and HTTP request without a credential or an argument in any of them."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp import Client

from . import support
from .hygiene import HYGIENE
from .services import Postgres
from .support import EXE, INITIALIZE, MCP_HEADERS, answering, env, http_transport

pytestmark = pytest.mark.anyio

KEY = "key-one-0123456789abcdef"  # an MCP API key tests/hygiene.py looks for everywhere


def run(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return support.run([EXE, *args], env=env(**environment), timeout=60, stdin=subprocess.DEVNULL)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The start-up error: exit status 2 and a single line on stderr, no traceback."""
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relatel-mcp: "), done.stderr
    return lines[0]


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# ------------------------------------------------------------------ start-up errors


@pytest.mark.parametrize(
    "command",
    [
        ["sandbox", "--port", "{port}"],
        ["serve", "--sandbox", "--transport", "http", "--auth", "none", "--port", "{port}"],
        ["serve", "--transport", "http", "--auth", "none", "--port", "{port}"],
    ],
)
def test_a_port_in_use_is_one_line_naming_the_flag(taken_port, command):
    args = [part.format(port=taken_port) for part in command]
    line = one_line(run(*args, RELATEL_TOKEN="sandbox-admin"))
    assert f"127.0.0.1:{taken_port}" in line and "in use" in line and "--port" in line


@pytest.mark.parametrize(
    ("args", "environment", "says"),
    [
        (["--toolsets", "contacts,sms"], {}, "unknown toolsets sms in --toolsets"),
        ([], {"RELATEL_MCP_SECRET": "too-short"}, "RELATEL_MCP_SECRET must be at least 32 characters"),
        ([], {"RELATEL_MCP_LOG_LEVEL": "loud"}, "RELATEL_MCP_LOG_LEVEL must be one of debug"),
    ],
)
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_config_error_is_one_line_with_or_without_the_sandbox(args, environment, says, transport):
    http = ["--transport", "http", "--auth", "none", "--port", "0"] if transport == "http" else []
    for sandbox in (["--sandbox"], []):
        line = one_line(run("serve", *sandbox, *http, *args, RELATEL_TOKEN="sandbox-admin", **environment))
        assert says in line


def test_an_api_key_shorter_than_16_characters_is_refused_and_one_of_16_serves():
    short, enough = "short-key-01234", "short-key-012345"  # 15 and 16 characters
    line = one_line(run("serve", "--sandbox", "--transport", "http", "--port", "0",
                        RELATEL_MCP_API_KEYS=f"{KEY},{short}"))  # fmt: skip
    assert "every key in RELATEL_MCP_API_KEYS must be at least 16 characters" in line
    assert short not in line  # named by its variable, never shown
    with serving("--sandbox", RELATEL_MCP_API_KEYS=enough) as served:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {enough}"}
        assert httpx2.post(f"{served.url}/mcp", json=INITIALIZE, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("args", "environment", "says"),
    [
        ([], {}, "--auth oauth needs this server's app at Relatel: set RELATEL_CLIENT_ID and RELATEL_CLIENT_SECRET"),
        (["--host", "0.0.0.0"], {"RELATEL_CLIENT_ID": "app", "RELATEL_CLIENT_SECRET": "its-secret"},
         "--auth oauth needs --public-url"),
    ],
)  # fmt: skip
def test_auth_oauth_needs_the_servers_app_at_relatel_and_a_public_url(args, environment, says):
    """On loopback the public URL is the server's own address; elsewhere it must be given."""
    line = one_line(
        run("serve", "--transport", "http", "--auth", "oauth", "--port", "0", *args, **environment)
    )
    assert says in line


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.remove()


@pytest.mark.slow  # starts PostgreSQL
def test_a_shared_store_without_a_shared_secret_is_refused(sandbox, postgres, tmp_path):
    """Replicas sharing a store must share the secret that seals confirmations: without one a
    server refuses to start, before it serves anything; with one, the same store serves."""
    shared = {"RELATEL_TOKEN": "sandbox-admin", "RELATEL_BASE_URL": sandbox.url,
              "RELATEL_MCP_STORE": postgres.create_database("cli_shared_store")}  # fmt: skip
    line = one_line(run("serve", "--state-dir", str(tmp_path), **shared))
    assert "a shared store needs a shared RELATEL_MCP_SECRET" in line
    secret = "a-secret-every-replica-shares-0123456789"
    with serving(
        "--auth", "none", "--state-dir", str(tmp_path), RELATEL_MCP_SECRET=secret, **shared
    ) as served:
        assert httpx2.get(f"{served.url}/readyz").json() == {"status": "ready"}  # the store answers


def test_the_sandbox_can_be_chosen_by_environment():
    assert "RELATEL_MCP_SANDBOX must be true or false" in one_line(run(RELATEL_MCP_SANDBOX="perhaps"))
    assert "RELATEL_TOKEN is not set" in one_line(run(RELATEL_MCP_SANDBOX="0"))
    with serving(RELATEL_MCP_SANDBOX="true", RELATEL_MCP_AUTH="none") as served:
        assert any("SANDBOX mode" in line for line in served.said)


def test_log_level_debug_adds_the_traceback():
    done = run("serve", "--sandbox", "--toolsets", "sms", "--log-level", "debug")
    assert done.returncode == 2 and "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("relatel-mcp: unknown toolsets sms")


@pytest.mark.parametrize(
    ("base_url", "fix"),
    [
        ("app.relatel.dk", "needs a scheme: set it to https://app.relatel.dk"),
        ("ftp://app.relatel.dk", "must be an http or https URL: set it to https://app.relatel.dk"),
        (
            "https://app.relatel.dk/api/v2",
            "without a path (the server adds /api/v2/...): set it to https://app.relatel.dk",
        ),
        ("https://", "has no host"),
    ],
)
def test_the_base_url_is_checked_at_start_up(base_url, fix):
    line = one_line(run(RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=base_url))
    assert line.startswith("relatel-mcp: RELATEL_BASE_URL (or --base-url)") and fix in line
    assert fix in one_line(run("serve", "--base-url", base_url, RELATEL_TOKEN="sandbox-admin"))


async def test_a_good_base_url_with_a_trailing_slash_is_used(sandbox):
    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=EXE, args=[], env=env(RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=sandbox.url + "/")
    )
    async with Client(params) as session:
        result = await session.call_tool("list_tags", {})
    paths = [r["path"] for r in sandbox.requests()]  # the call, and the account read at start-up
    assert not result.is_error and "/api/v2/tags" in paths
    assert all(path.startswith("/api/v2/") and "//" not in path for path in paths)


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    ("args", "usage", "says"),
    [
        (["server"], "usage: relatel-mcp [-h]", "unknown command 'server'\ndid you mean serve?\n"),
        (["serve", "--sandbx"], "usage: relatel-mcp serve [-h]", "--sandbx\ndid you mean --sandbox?\n"),
        (["--sandbx"], "usage: relatel-mcp serve [-h]", "--sandbx\ndid you mean --sandbox?\n"),
        (["serve", "--port", "abc"], "usage: relatel-mcp serve [-h]", "argument --port: invalid int value"),
        (["audit", "--jsn"], "usage: relatel-mcp audit [-h]", "--jsn\ndid you mean --json?\n"),
    ],
)
def test_mistakes_on_the_command_line_get_the_commands_usage_and_the_close_match(args, usage, says):
    done = run(*args)
    assert done.returncode == 2 and done.stderr.startswith(usage) and says in done.stderr, done.stderr


# ------------------------------------------------------------------ a server subprocess over HTTP


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    said: list[str] = field(default_factory=list)  # stderr lines so far

    def stop(self) -> list[str]:
        self.process.terminate()
        _, rest = self.process.communicate(timeout=30)
        self.said += rest.splitlines()
        return self.said

    def logged(self, event: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.said if line.startswith("{")]
        return [line for line in lines if line.get("event") == event]


@contextlib.contextmanager
def serving(*args: str, **environment: str) -> Iterator[Served]:
    process = subprocess.Popen(
        [EXE, "serve", "--transport", "http", "--port", "0", *args],
        env=env(**environment), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    served = Served("", process)
    try:
        while not served.url:
            line = process.stderr.readline()
            assert line, f"the server stopped: {served.said}"
            served.said.append(line.rstrip("\n"))
            if found := re.search(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp", line):
                served.url = found.group(1)
        yield served
    finally:
        if process.poll() is None:
            served.stop()
        HYGIENE.scan_stderr(f"relatel-mcp serve {' '.join(args)}", "\n".join(served.said))


async def test_sandbox_trials_keep_their_state_in_a_throwaway_directory(tmp_path):
    real = tmp_path / "real-state"
    with serving("--sandbox", "--auth", "none", RELATEL_MCP_STATE_DIR=str(real)) as served:
        async with Client(http_transport(served.url), mode="legacy", elicitation_callback=answering()) as c:
            call = await c.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
        banner = next(line for line in served.said if "SANDBOX mode" in line)
        throwaway = Path(re.search(r"kept in (\S+)\.$", banner).group(1))
        assert (throwaway / "state.db").exists()  # the call's budget and audit went there
        served.stop()
    assert not call.is_error, call
    assert not real.exists()  # nothing of the trial in the real state directory
    assert not throwaway.exists()  # and the throwaway one is gone with the server
    assert "No audit records yet" in run("audit", "--state-dir", str(real)).stdout


async def test_sandbox_with_a_state_dir_keeps_it_there(tmp_path):
    kept = tmp_path / "kept"
    with serving("--sandbox", "--auth", "none", "--state-dir", str(kept)) as served:
        async with Client(http_transport(served.url), mode="legacy", elicitation_callback=answering()) as c:
            await c.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    records = [
        json.loads(line) for line in run("audit", "--json", "--state-dir", str(kept)).stdout.splitlines()
    ]
    assert [(r["tool"], r["decision"]) for r in records] == [("initiate_call", "sent")]


# ------------------------------------------------------------------ log lines


async def test_one_json_line_per_tool_call_and_http_request_without_secrets():
    pasted = "pasted-secret-9f8e7d6c"  # what an agent might paste into an argument (never logged)
    with serving("--sandbox", RELATEL_MCP_API_KEYS=KEY) as served:
        async with httpx2.AsyncClient(base_url=served.url) as web:
            assert (await web.post("/mcp", json={})).status_code == 401
            assert (
                await web.post("/mcp", json={}, headers={"Authorization": "Bearer wrong-key"})
            ).status_code == 401
            assert (await web.get("/approve/Zq9s8PageCredential")).status_code in (404, 410)
        async with Client(http_transport(served.url, KEY), mode="legacy") as c:
            created = await c.call_tool("create_contact", {"name": pasted, "number": "+45 70 00 00 01"})
            wrong = await c.call_tool("list_contacts", {"limt": 5, "note": pasted})
            await c.call_tool("get_current_employee", {})
        served.stop()
    stderr = "\n".join(served.said)  # scanned for every credential too, as every server's is
    assert not created.is_error and wrong.is_error
    for secret in (
        KEY,
        "wrong-key",
        pasted,
        "sandbox-admin",
        "Zq9s8PageCredential",
        "70 00 00 01",
        "4570000001",
    ):
        assert secret not in stderr
    assert all(json.loads(line) for line in served.said if line.startswith("{"))

    calls = served.logged("tool_call")
    assert [(c["tool"], c["decision"], c["status"]) for c in calls] == [
        ("create_contact", "sent", 200),
        ("list_contacts", "invalid", None),
        ("get_current_employee", "sent", 200),
    ]
    for line in calls:
        assert set(line) == {
            "time",
            "level",
            "logger",
            "event",
            "tool",
            "account",
            "decision",
            "status",
            "duration_ms",
        }
        # a pseudonym of the token, or of company and employee once known (tools/list asks)
        assert re.fullmatch(r"(token:)?[0-9a-f]{16}", line["account"]) and line["duration_ms"] >= 0

    requests = served.logged("http")
    assert {"method": "POST", "path": "/mcp", "status": 401} in [
        {k: r[k] for k in ("method", "path", "status")} for r in requests
    ]
    assert any(r["path"] == "/approve/…" for r in requests)
    assert all(set(r) == {"time", "level", "logger", "event", "method", "path", "status", "duration_ms", "client"}
               for r in requests)  # fmt: skip


async def test_log_level_warning_leaves_out_the_call_lines():
    with serving("--sandbox", "--auth", "none", "--log-level", "warning") as served:
        async with Client(http_transport(served.url), mode="legacy") as c:
            result = await c.call_tool("list_tags", {})
        served.stop()
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert served.logged("tool_call") == [] and served.logged("http") == []
