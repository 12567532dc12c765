"""What a group SMS costs now that it is sent to each member shown, one by one.

A real MCP client (2025-11-25, form elicitation answered at once) calls send_employee_group_sms
for a group of N members of the sandbox; the server talks HTTP to the sandbox on loopback. Prints,
per N: the upstream requests of one call (from the sandbox's request log) and the wall time of a
call, median and range over ROUNDS calls, each in a fresh server (a rested rate limiter, as for a
one-off message), with the server's default client rate limit (10 requests a second, bursts of
20: what a user runs) and with it off. For scale, the same run times Relatel's
group endpoint called once directly (what the server sent before, to whoever was in the group).
Run: .venv/bin/python benchmarks/group_sms.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import mcp.types as types
from mcp import Client

from relatel_mcp.app import assemble
from relatel_mcp.front.server import build_server
from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.settings import Settings

SIZES = (10, 50)
ROUNDS = 7
POLICY = Policy(budgets=Budgets(sms_segments=1_000_000))  # the benchmark sends thousands


async def accept(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


def make_group(api: httpx2.Client, size: int) -> int:
    ids = [
        api.post(
            "/api/v2/employees", json={"employee": {"name": f"Ansat {i}", "number": f"4522{size:02d}{i:04d}"}}
        )
        .raise_for_status()
        .json()["employee"]["id"]
        for i in range(size)
    ]
    group = {"employee_group": {"name": f"Alle {size}", "employee_ids": ids}}
    return api.post("/api/v2/employee_groups", json=group).raise_for_status().json()["id"]


async def one_call(url: str, group: int, rate: float) -> tuple[float, Counter[str]]:
    settings = Settings(
        token="sandbox-admin",
        base_url=url,
        state_dir=Path(tempfile.mkdtemp()),
        policy=POLICY,
        rate_per_second=rate,
    )
    arguments = {"employee_group_id": group, "body": "Kontoret holder lukket i dag."}
    with httpx2.Client(base_url=url) as control:
        async with (
            assemble(settings) as app,
            Client(build_server(app), mode="legacy", elicitation_callback=accept) as session,
        ):
            await session.list_tools()  # as clients do first: the account is read
            control.delete("/_sandbox/requests")
            started = time.perf_counter()
            result = await session.call_tool("send_employee_group_sms", arguments)
            elapsed = time.perf_counter() - started
            assert not result.is_error, result.content
        log = control.get("/_sandbox/requests").json()["requests"]
    return elapsed, Counter(f"{r['method']} {r['path'].split('/')[3]}" for r in log)


def seconds(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} s ({min(times):.3f}–{max(times):.3f})"


def main() -> None:
    with (
        SandboxServer() as sandbox,
        httpx2.Client(base_url=sandbox.url, headers={"Authorization": "Bearer sandbox-admin"}) as api,
    ):
        print(f"group SMS, {ROUNDS} calls each; median (min–max) wall time of one call")
        for size in SIZES:
            group = make_group(api, size)
            for label, rate in (("default rate limit (10/s, burst 20)", 10.0), ("rate limit off", 0.0)):
                calls = [anyio.run(one_call, sandbox.url, group, rate) for _ in range(ROUNDS)]
                times, requests = [t for t, _ in calls], calls[-1][1]
                print(
                    f"  {size} members, {label}: {seconds(times)}; requests of the last call: {dict(requests)}"
                )
            direct = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                api.post(f"/api/v2/employee_groups/{group}/message", json={"body": "x"}).raise_for_status()
                direct.append(time.perf_counter() - started)
            print(f"  {size} members, Relatel's group endpoint called once, directly: {seconds(direct)}")


if __name__ == "__main__":
    main()
