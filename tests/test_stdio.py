"""The real thing: `relatel-mcp` as a subprocess speaking MCP over stdio, and its command line."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters

from .hygiene import HYGIENE
from .support import EXE, GATED_COUNT, TOOL_COUNT, approving, env, run, stdio, url_only

CALL = ("initiate_call", {"to_number": "+45 28 11 44 77"})

pytestmark = pytest.mark.anyio


async def test_stdio_subprocess_serves_the_catalogue_and_calls_upstream(sandbox):
    params = StdioServerParameters(
        command=EXE, args=[], env=env(RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=sandbox.url)
    )
    async with Client(params, mode="legacy") as session:
        tools = (await session.list_tools()).tools
        result = await session.call_tool("list_employees", {})
    assert len(tools) == TOOL_COUNT - GATED_COUNT  # the gated tools need a client that can ask its user
    assert not result.is_error and len(result.structured_content["employees"]) == 5
    # The call, once; and what the account can use, each read at most once (test_access.py), in
    # any order with the call: the start-up reads run beside the client's first requests, and the
    # account read they share with the call is one request (accounts.py).
    asked = Counter(r["path"] for r in sandbox.requests())
    assert asked.pop("/api/v2/employees") == 1
    start_up = {
        "/api/v2/employee",
        "/api/v2/m2m/subscriptions",
        "/api/v2/receptions",
        "/api/v2/receptions/1/status",
    }
    assert set(asked) <= start_up and set(asked.values()) <= {1}, asked


async def test_serve_sandbox_needs_no_account():
    params = StdioServerParameters(command=EXE, args=["serve", "--sandbox"], env=env())
    async with Client(params) as session:
        result = await session.call_tool("get_current_employee", {})
    assert result.structured_content["employee"]["name"] == "Mette Hansen"


@pytest.mark.parametrize("human", ["approves", "walks away"])
async def test_the_loopback_page_server_stops_without_a_traceback(human):
    """The approval page's server stops when the question closes or the session ends; neither
    prints a traceback to stderr (which an MCP client shows its user as the server's log)."""
    pages: list[dict[str, Any]] = []
    opened = anyio.Event()

    async def leave(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        async with httpx2.AsyncClient(timeout=10) as browser:
            pages.append({"status": (await browser.get(params.url)).status_code})
        opened.set()
        await anyio.sleep_forever()  # the session ends with the question open
        raise AssertionError("unreachable")

    callback = approving(pages=pages) if human == "approves" else leave
    params = StdioServerParameters(command=EXE, args=["serve", "--sandbox"], env=env())
    said: list[str] = []
    with url_only():
        async with Client(stdio(params, said), elicitation_callback=callback) as session:
            if human == "approves":
                assert not (await session.call_tool(*CALL)).is_error
            else:
                async with anyio.create_task_group() as asking:
                    asking.start_soon(session.call_tool, *CALL)
                    with anyio.fail_after(30):
                        await opened.wait()
                    asking.cancel_scope.cancel()
    (logged,) = said
    assert pages[0]["status"] == 200 and "SANDBOX mode" in logged
    assert "Traceback" not in logged and "CancelledError" not in logged, logged


def test_missing_token_is_a_clear_message_not_a_traceback():
    done = run([EXE], env=env(), timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "RELATEL_TOKEN is not set" in done.stderr and "--sandbox" in done.stderr
    assert "Traceback" not in done.stderr


def test_tools_prints_the_catalogue():
    done = run([EXE, "tools"], env=env(), timeout=30)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == TOOL_COUNT
    call = next(line.split() for line in lines if line.startswith("initiate_call "))
    assert call == ["initiate_call", "costly", "calls", "POST", "/api/v2/switch/dial"]


def test_sandbox_command_prints_its_url_and_demo_tokens():
    import re
    import urllib.request

    process = subprocess.Popen(
        [EXE, "sandbox", "--port", "0"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        url = re.search(r"Relatel sandbox at (http://127\.0\.0\.1:\d+)", lines[0]).group(1)
        assert all(
            token in "".join(lines) for token in ("sandbox-admin", "sandbox-employee", "sandbox-starter")
        )
        with urllib.request.urlopen(f"{url}/") as response:
            assert json.load(response)["sandbox"] is True
    finally:
        process.terminate()
        HYGIENE.scan_stderr("relatel-mcp sandbox", process.communicate(timeout=15)[1])
