"""Only the tools this account can use: a non-admin employee and a company without Switch Premium
and the M2M agreement are offered fewer tools, over stdio, in process (both eras) and per tenant
over HTTP; `--all-tools` lists every tool; a call to a hidden tool says what is missing and sends
nothing. Against the sandbox's demo accounts:

    sandbox-admin     Mette, admin; Switch Premium, M2M agreement   every tool
    sandbox-employee  Jonas, not admin, same company                 not the admin-only tools
    sandbox-starter   Lars, admin; Switch Starter, no M2M            not the Switch Premium and M2M tools
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from relatel_mcp.app import assemble
from relatel_mcp.core import catalog
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.upstream.accounts import Unavailable
from relatel_mcp.upstream.client import Tenant

from .support import (
    EXE,
    MODES,
    TOOL_COUNT,
    answering,
    connect,
    env,
    error_of,
    http_transport,
    serve_http,
    settings_for,
    until_held,
)

pytestmark = pytest.mark.anyio

OPS = catalog.load()
ALL = {op.name for op in OPS}
ADMIN = {op.name for op in OPS if "admin" in op.requires}
PLAN_AND_M2M = {op.name for op in OPS if {"switch_premium", "m2m"} & set(op.requires)}
SEES = {
    "sandbox-admin": ALL,
    "sandbox-employee": ALL - ADMIN,
    "sandbox-starter": ALL - PLAN_AND_M2M,
}
PROBES = ["/api/v2/m2m/subscriptions", "/api/v2/receptions", "/api/v2/receptions/{}/status"]


def test_the_demo_accounts_lack_what_the_catalogue_says():
    assert {
        "create_employee", "update_employee", "delete_employee", "create_employee_group", "update_employee_group",
    } == ADMIN  # fmt: skip
    assert {
        "send_employee_sms", "send_employee_group_sms", "get_reception_statistics", "get_reception_call_status",
        "list_m2m_subscriptions", "get_m2m_subscription", "update_m2m_subscription", "get_m2m_consumption",
        "order_m2m_activation", "order_m2m_cancellation", "order_m2m_product_change",
        "order_subscription_cancellation",
    } == PLAN_AND_M2M  # fmt: skip


def listed(tools) -> set[str]:
    return {tool.name for tool in tools}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("token", SEES)
async def test_each_account_is_offered_only_the_tools_it_can_use(sandbox, token, mode):
    async with connect(sandbox.url, mode=mode, token=token, elicitation_callback=answering("decline")) as s:
        assert listed((await s.list_tools()).tools) == SEES[token]
        assert listed((await s.list_tools()).tools) == SEES[token]  # asked once, kept
    asked = [r["path"] for r in sandbox.requests() if r["path"] != "/api/v2/employee"]
    assert sorted(asked) == sorted(p.format(1 if token != "sandbox-starter" else 101) for p in PROBES)


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_to_a_hidden_tool_says_what_is_missing_and_sends_nothing(sandbox, mode):
    async with connect(sandbox.url, mode=mode, token="sandbox-starter") as session:
        await session.list_tools()
        sandbox.clear_requests()
        m2m = error_of(await session.call_tool("list_m2m_subscriptions", {}))
        premium = error_of(await session.call_tool("get_reception_call_status", {"id": 101}))
    assert m2m["code"] == premium["code"] == "forbidden"
    assert "the separate M2M agreement" in m2m["message"] and "Nothing was sent" in m2m["message"]
    assert "the Switch Premium plan" in premium["message"]
    assert sandbox.requests() == []
    async with connect(sandbox.url, mode=mode, token="sandbox-employee") as session:
        await session.list_tools()
        sandbox.clear_requests()
        admin = error_of(await session.call_tool("delete_employee", {"id": 3}))
    assert admin["code"] == "forbidden" and "an admin employee's token" in admin["message"]
    assert sandbox.requests() == [] and 3 in sandbox.state.companies[1].employees


@pytest.mark.parametrize("mode", MODES)
async def test_all_tools_lists_everything_and_relatel_still_refuses(sandbox, mode):
    async with connect(sandbox.url, mode=mode, token="sandbox-starter", all_tools=True,
                       elicitation_callback=answering("decline")) as session:  # fmt: skip
        tools = (await session.list_tools()).tools
        refused = error_of(await session.call_tool("list_m2m_subscriptions", {}))
    assert len(tools) == TOOL_COUNT
    assert refused["code"] == "forbidden" and refused["status"] == 403  # Relatel's own answer
    assert "M2M agreement required" in refused["message"]
    assert [r["path"] for r in sandbox.requests()] == ["/api/v2/m2m/subscriptions"]  # nothing asked first


async def test_an_account_relatel_cannot_describe_keeps_every_tool(sandbox):
    sandbox.fault(method="GET", path="/api/v2/m2m/subscriptions", status=503, count=5)
    async with connect(sandbox.url, token="sandbox-starter", elicitation_callback=answering("decline")) as s:
        names = listed((await s.list_tools()).tools)
    assert names == ALL - {op.name for op in OPS if "switch_premium" in op.requires}  # only the clear 403


@pytest.mark.parametrize("args", [[], ["--all-tools"]])
@pytest.mark.parametrize("token", ["sandbox-employee", "sandbox-starter"])
async def test_stdio_reads_the_account_at_start_up(sandbox, token, args):
    params = StdioServerParameters(
        command=EXE, args=args, env=env(RELATEL_TOKEN=token, RELATEL_BASE_URL=sandbox.url)
    )
    async with Client(params, mode="legacy", elicitation_callback=answering("decline")) as session:
        tools = listed((await session.list_tools()).tools)
    assert tools == (ALL if args else SEES[token])


async def test_all_tools_from_the_environment(sandbox):
    params = StdioServerParameters(
        command=EXE,
        env=env(RELATEL_TOKEN="sandbox-starter", RELATEL_BASE_URL=sandbox.url, RELATEL_MCP_ALL_TOOLS="1"),
    )
    async with Client(params, mode="legacy", elicitation_callback=answering("decline")) as session:
        assert len((await session.list_tools()).tools) == TOOL_COUNT
    assert sandbox.requests() == []  # nothing asked about the account


@pytest.mark.parametrize("mode", MODES)
async def test_over_http_each_tenant_is_offered_its_own_tools(sandbox, tmp_path, mode):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    with serve_http(settings, HttpOptions(auth="passthrough")) as url:
        for token, expected in SEES.items():
            transport = http_transport(url, token)
            async with Client(transport, mode=mode, elicitation_callback=answering("decline")) as session:
                assert listed((await session.list_tools()).tools) == expected, token
        # the first tenant again: its own list still, from the cache
        async with Client(http_transport(url, "sandbox-starter"), mode=mode) as session:
            hidden = error_of(await session.call_tool("order_m2m_cancellation", {"subscription_id": 4567}))
    assert hidden["code"] == "forbidden" and "M2M agreement" in hidden["message"]
    assert sandbox.outbox() == []


# ------------------------------------------------------------------ one request about a token at a time


async def at_once(*lookups: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Each lookup's result (or error), all run at once, begun in this order."""
    outcomes: list[Any] = [None] * len(lookups)

    async def run(i: int) -> None:
        try:
            outcomes[i] = await lookups[i]()
        except Exception as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as tasks:
        for i in range(len(lookups)):
            tasks.start_soon(run, i)
    return outcomes


def account_reads(sandbox) -> int:
    return [r["path"] for r in sandbox.requests()].count("/api/v2/employee")


async def test_concurrent_lookups_of_one_token_share_one_request(sandbox):
    """As a stdio server's start-up read and its first call may: the second lookup, begun while
    the first one's request is out (its answer held at Relatel until then), awaits that answer."""
    sandbox.fault(method="GET", path="/api/v2/employee", hold=True)
    starter = Tenant("sandbox-starter")
    async with assemble(settings_for(sandbox.url)) as app:

        async def release_once_both_asked() -> None:
            await until_held(sandbox)
            await anyio.wait_all_tasks_blocked()  # the second lookup is as far as it can get
            await anyio.to_thread.run_sync(sandbox.release)

        first, second, _ = await at_once(
            lambda: app.accounts.employee(starter),
            lambda: app.accounts.employee(starter),
            release_once_both_asked,
        )
        assert first == second and first.admin is True and "switch" in first.features
        assert await app.accounts.of(starter) == first.account  # kept: no request
    assert account_reads(sandbox) == 1


async def test_a_failed_lookup_fails_everyone_waiting_and_the_next_one_asks_again(sandbox):
    sandbox.fault(method="GET", path="/api/v2/employee", status=503)
    starter = Tenant("sandbox-starter")
    async with assemble(settings_for(sandbox.url, retries=0)) as app:
        # The second begins while the first one's request is out (it is begun first, and asks at once).
        failed = await at_once(lambda: app.accounts.employee(starter), lambda: app.accounts.employee(starter))
        assert account_reads(sandbox) == 1  # the second waited for the first's answer: a 503
        again = await app.accounts.employee(starter)
    assert [type(error) for error in failed] == [Unavailable, Unavailable]
    assert "HTTP 503" in str(failed[1])
    assert again is not None and again.admin is True and account_reads(sandbox) == 2
