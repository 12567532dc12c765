"""A new user's first minute, through the real interfaces: a wrong token or base URL is said on
stderr at start-up (and the server keeps serving, so the client shows the tools' errors), a
refused token's hint names the way the token was given, a client that cannot ask its user is told
in the log how many tools it does not see and why, a call to a tool it does not see says why and
what opts in, and the smaller hints (the HTTP trial's auth, a mistyped flag, a lookup by number,
the Toolkit without `approve=`) say what fits the reader."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from .support import COUNT_WITHOUT_HUMAN, EXE, GATED_COUNT, answering, env, error_of, run, stdio, toolkit_for

pytestmark = pytest.mark.anyio

WRONG = "not-a-relatel-token-5d1e"  # a token Relatel (the sandbox) refuses


async def session_log(params: StdioServerParameters, **client: Any) -> tuple[list[Any], str]:
    """Run a stdio session (list the tools, then each call of `client["calls"]`): the results
    and everything the server wrote to stderr."""
    calls = client.pop("calls", [])
    said: list[str] = []
    async with Client(stdio(params, said), mode="legacy", **client) as session:
        results: list[Any] = [(await session.list_tools()).tools]
        for name, arguments in calls:
            results.append(await session.call_tool(name, arguments))
    return results, said[0]


# ------------------------------------------------------------------ a wrong token or base URL


async def test_a_refused_token_is_said_at_start_up_and_its_hint_names_relatel_token(sandbox):
    params = StdioServerParameters(command=EXE, env=env(RELATEL_TOKEN=WRONG, RELATEL_BASE_URL=sandbox.url))
    (tools, call), logged = await session_log(params, calls=[("list_tags", {})])
    said = [line for line in logged.splitlines() if "refused the token" in line]
    assert len(said) == 1 and said[0].startswith(f"relatel-mcp: Relatel at {sandbox.url} refused"), logged
    assert "serving anyway" in said[0] and "RELATEL_TOKEN" in said[0] and "login" not in said[0]
    assert tools and error_of(call)["code"] == "unauthorized"  # still serving: the client sees why
    hint = error_of(call)["hint"]
    assert "RELATEL_TOKEN" in hint and "relatel-mcp login" not in hint, hint
    assert WRONG not in logged and WRONG not in json.dumps(error_of(call))


async def test_a_refused_stored_login_says_run_login_again(sandbox, tmp_path):
    """The token `relatel-mcp login` kept (its file, where no keyring is in use), since revoked."""
    (tmp_path / "login.json").write_text(
        json.dumps({"base_url": sandbox.url, "token": WRONG, "keyring": False})
    )
    params = StdioServerParameters(
        command=EXE, env=env(RELATEL_BASE_URL=sandbox.url, RELATEL_MCP_STATE_DIR=str(tmp_path))
    )
    (_, call), logged = await session_log(params, calls=[("list_tags", {})])
    assert "refused the token" in logged and "run relatel-mcp login again" in logged, logged
    hint = error_of(call)["hint"]
    assert "run relatel-mcp login again" in hint and "RELATEL_TOKEN" not in hint, hint


async def test_an_unreachable_base_url_is_said_at_start_up():
    params = StdioServerParameters(
        command=EXE, env=env(RELATEL_TOKEN=WRONG, RELATEL_BASE_URL="http://127.0.0.1:9")
    )
    (_, call), logged = await session_log(params, calls=[("list_tags", {})])
    said = [line for line in logged.splitlines() if "unreachable" in line]
    assert len(said) == 1 and "http://127.0.0.1:9" in said[0] and "RELATEL_BASE_URL" in said[0], logged
    assert error_of(call)["code"] == "unreachable"


async def test_a_good_token_says_nothing_at_start_up(sandbox):
    params = StdioServerParameters(
        command=EXE, env=env(RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=sandbox.url)
    )
    _, logged = await session_log(params, elicitation_callback=answering())
    assert logged.strip() == "", logged


# ------------------------------------------------------------------ a client that cannot ask its user


def hidden_lines(logged: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "tools_hidden"]


async def test_a_client_without_elicitation_is_told_what_it_does_not_see_and_why():
    params = StdioServerParameters(command=EXE, args=["serve", "--sandbox"], env=env())
    said: list[str] = []
    async with Client(stdio(params, said), mode="legacy") as session:
        listed = (await session.list_tools()).tools
        await session.list_tools()  # told once per session
        refused = await session.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    logged = said[0]
    told = hidden_lines(logged)
    assert len(told) == 1, logged
    assert told[0]["hidden"] == GATED_COUNT and told[0]["listed"] == len(listed) == COUNT_WITHOUT_HUMAN
    assert (
        "elicitation" in told[0]["message"] and "--costly preview --destructive preview" in told[0]["message"]
    )
    error = error_of(refused)  # a call to a tool it was not offered: why, and the opt-in
    assert error["code"] == "refused" and "cannot ask its user" in error["message"]
    assert "elicitation" in error["hint"] and "--costly preview" in error["hint"]


async def test_a_client_that_can_ask_is_told_nothing():
    params = StdioServerParameters(command=EXE, args=["serve", "--sandbox"], env=env())
    (listed,), logged = await session_log(params, elicitation_callback=answering())
    assert hidden_lines(logged) == [] and len(listed) == COUNT_WITHOUT_HUMAN + GATED_COUNT


async def test_a_tool_outside_the_chosen_toolsets_names_the_toolset():
    params = StdioServerParameters(
        command=EXE, args=["serve", "--sandbox", "--toolsets", "contacts"], env=env()
    )
    async with Client(params, mode="legacy") as session:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    said = str(raised.value)
    assert "initiate_call is in the calls toolset" in said and "--toolsets" in said, said


def test_the_http_trial_without_keys_points_to_auth_none():
    done = run([EXE, "serve", "--sandbox", "--transport", "http", "--port", "0"], env=env(), timeout=60,
               stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 2 and "--auth none" in done.stderr and "RELATEL_MCP_API_KEYS" in done.stderr


# ------------------------------------------------------------------ smaller hints


@pytest.mark.parametrize(("args", "suggestion"), [(["serve", "--sandbx"], "did you mean --sandbox?"),
                                                  (["srve"], "did you mean serve?")])  # fmt: skip
def test_a_mistyped_flag_or_command_ends_with_the_suggestion_alone(args, suggestion):
    done = run([EXE, *args], env=env(), timeout=60)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == suggestion, done.stderr


def test_a_lookup_by_number_that_finds_nobody_says_check_the_number(sandbox):
    toolkit = toolkit_for(sandbox.url)
    found = toolkit.call_sync("find_contact_by_number", {"number": "+45 99 99 99 99"})
    assert found["error"]["code"] == "not_found", found
    assert "number" in found["error"]["hint"] and "id" not in found["error"]["hint"].split(), found


def test_the_toolkit_without_approve_says_approve_not_elicitation(sandbox):
    refused = toolkit_for(sandbox.url).call_sync("initiate_call", {"to_number": "+45 28 11 44 77"})
    error = refused["error"]
    assert error["code"] == "refused" and "approve=" in error["hint"] and "approve=" in error["message"]
    assert "elicitation" not in error["hint"] + error["message"] and "MCP" not in error["hint"], error
