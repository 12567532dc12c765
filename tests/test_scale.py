"""Scale-out: three `relatel-mcp serve --stateless` replicas (real processes) behind nginx
(round-robin, the deployment's own locations file), all sharing one PostgreSQL database, and the
sandbox as Relatel. The gate's promises must hold across replicas: one confirmation sends once,
a budget is a budget, a question asked by one replica is answered on another, a replica killed
mid-send leaves its attempts in the audit, and PostgreSQL can go away and come back. A replica
that is not ready is routed around, and when none is, the last one nginx tries serves anyway.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from relatel_mcp.store import open_store

from .hygiene import HYGIENE
from .services import Nginx, Postgres, free_port, missing, stop_pid
from .support import answering, approving, env, error_of, http_transport, url_only

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("relatel-mcp"))
SECRET = "a-secret-every-replica-shares-0123456789"
METRICS = "metrics-7Hq2vX9c-0123456789abcdef"
CALL = "initiate_call"
ACCEPTED = types.ElicitResult(action="accept", content={"confirm": True})


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.remove()


@dataclass
class Cluster:
    url: str  # nginx
    replicas: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    store: str = ""

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"


@contextmanager
def cluster(
    sandbox: Any,
    postgres: Postgres,
    tmp_path: Path,
    policy: str = "",
    replica_env: Callable[[int], dict[str, str]] = lambda i: {},
) -> Iterator[Cluster]:
    """Three replicas (each with `replica_env(i)` in its environment) and nginx in front; every
    process stopped by its pid at the end, and what each wrote to stderr scanned for credentials."""
    store = postgres.create_database(f"cluster_{time.monotonic_ns()}")
    (tmp_path / "policy.toml").write_text(policy)
    shared = env(
        RELATEL_BASE_URL=sandbox.url,
        RELATEL_MCP_STORE=store,
        RELATEL_MCP_SECRET=SECRET,
        RELATEL_MCP_METRICS_TOKEN=METRICS,
    )
    ports = [free_port() for _ in range(3)]
    logs = [(tmp_path / f"replica-{i}.stderr").open("w") for i in range(3)]
    replicas = [
        subprocess.Popen(
            [
                EXE,
                "serve",
                "--transport",
                "http",
                "--stateless",
                "--auth",
                "passthrough",
                "--port",
                str(port),
                "--config",
                str(tmp_path / "policy.toml"),
                "--max-connections-per-client",
                "1000",
                "--credential-checks-per-client",
                "1000",
            ],
            env={**shared, "RELATEL_MCP_STATE_DIR": str(tmp_path / f"replica-{i}"), **replica_env(i)},
            stdout=subprocess.DEVNULL,
            stderr=logs[i],
        )
        for i, port in enumerate(ports)
    ]
    nginx = None
    try:
        for port in ports:
            _wait_healthy(f"http://127.0.0.1:{port}")
        nginx = Nginx([f"127.0.0.1:{p}" for p in ports], ROOT / "deploy" / "relatel-mcp.locations.conf")
        yield Cluster(nginx.url, replicas, ports, store)
    finally:
        if nginx is not None:
            nginx.stop()
        for process in replicas:
            stop_pid(process.pid)
            process.wait(10)
        for i, log in enumerate(logs):
            log.close()
            HYGIENE.scan_stderr(f"replica {i}", Path(log.name).read_text())


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"replica {url} did not start")


async def readiness(c: Cluster) -> list[int]:
    """Each replica's /readyz status, asked of it directly."""
    async with httpx2.AsyncClient(timeout=30) as http:
        return [(await http.get(f"{c.replica_url(i)}/readyz")).status_code for i in range(3)]


async def until_readiness(c: Cluster, statuses: list[int]) -> None:
    with anyio.fail_after(60):  # an answer is kept for a few seconds, then checked again
        while await readiness(c) != statuses:
            await anyio.sleep(0.2)


async def metrics_of(c: Cluster, i: int) -> dict[str, float]:
    """Replica i's metrics, as `name{labels}` -> value."""
    async with httpx2.AsyncClient(timeout=30) as http:
        text = (
            await http.get(f"{c.replica_url(i)}/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        ).text
    return dict(
        (line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line[:1] != "#"
    )


def client(url: str, token: str = "sandbox-admin", callback: Any = None) -> Client:
    """A 2026-07-28 client (sessionless: each request may land on any replica)."""
    return Client(http_transport(url, token), elicitation_callback=callback or answering("accept"))


def to(i: int) -> dict[str, str]:
    """The arguments of call number i: each call its own number, so that the record tells them apart."""
    return {"to_number": f"+45 28 11 {44 + i // 10:02d} {70 + i % 10:02d}"}


def number(i: int) -> str:
    return f"452811{44 + i // 10:02d}{70 + i % 10:02d}"


def dials(sandbox: Any) -> list[str]:
    return [r["body"]["to_number"] for r in sandbox.requests() if r["path"] == "/api/v2/switch/dial"]


# ------------------------------------------------------------------ one confirmation, one send


async def test_a_confirmation_minted_on_one_replica_redeemed_20_times_in_parallel_sends_once(
    sandbox, postgres, tmp_path
):
    with cluster(sandbox, postgres, tmp_path) as c:
        async with client(c.replica_url(0)) as first:  # minted by replica 0
            asked = await first.session.call_tool(CALL, to(0), allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        results: list[types.CallToolResult] = []

        async def redeem() -> None:
            async with client(c.url) as session:  # through nginx: any replica
                results.append(
                    await session.call_tool(
                        CALL, to(0), input_responses={"confirm": ACCEPTED}, request_state=asked.request_state
                    )
                )

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(redeem)
    refusals = [error_of(r)["message"] for r in results if r.is_error]
    assert len(results) == 20 and len(refusals) == 19
    assert all("already used" in message for message in refusals), refusals
    assert dials(sandbox) == [number(0)] and len(sandbox.outbox()) == 1


async def test_a_daily_budget_holds_across_replicas_under_50_concurrent_confirmed_calls(
    sandbox, postgres, tmp_path
):
    with cluster(sandbox, postgres, tmp_path, policy="[budgets]\ncalls = 7\n") as c:
        results: list[types.CallToolResult] = []

        async def call(i: int) -> None:
            async with client(c.url, token="sandbox-tenant-budget") as session:
                results.append(await session.call_tool(CALL, to(i)))

        async with anyio.create_task_group() as tasks:
            for i in range(50):
                tasks.start_soon(call, i)
    sent = [r for r in results if not r.is_error]
    refused = [error_of(r) for r in results if r.is_error]
    print(
        f"\nbudget 7, 50 concurrent confirmed calls over 3 replicas: {len(sent)} sent, {len(refused)} refused"
    )
    assert len(results) == 50 and len(sent) == 7 and len(dials(sandbox)) == 7
    assert all(e["code"] == "refused" and "budget" in e["message"] for e in refused)


# ------------------------------------------------------------------ rounds on different replicas


async def test_a_question_asked_by_one_replica_is_answered_on_another(sandbox, postgres, tmp_path):
    with cluster(sandbox, postgres, tmp_path) as c:
        async with client(c.replica_url(0)) as first:
            asked = await first.session.call_tool(CALL, to(1), allow_input_required=True)
        async with client(c.replica_url(1)) as second:
            answered = await second.call_tool(
                CALL, to(1), input_responses={"confirm": ACCEPTED}, request_state=asked.request_state
            )
        results = []
        async with client(c.url) as through_nginx:  # rounds wherever round-robin puts them
            for i in range(2, 8):
                results.append(await through_nginx.call_tool(CALL, to(i)))
        pages: list[dict[str, Any]] = []
        with url_only():  # an approval page: served, answered and waited on by whichever replica
            async with client(c.url, callback=approving(pages=pages)) as by_page:
                paged = await by_page.call_tool(CALL, to(9))
    assert not answered.is_error and not any(r.is_error for r in results) and not paged.is_error
    assert pages[0]["url"].startswith(f"{c.url}/approve/") and pages[0]["clicked"] == 200
    assert sorted(dials(sandbox)) == sorted(number(i) for i in (1, *range(2, 8), 9))


async def test_a_group_sms_answered_on_another_replica_reaches_only_the_people_shown(
    sandbox, postgres, tmp_path
):
    """Asked by replica 0, answered on replica 1, while a colleague adds a premium-rate employee to
    the group during the re-check, after it, and between two of the member sends."""
    from .test_group_sms import GROUP_SMS, POINTS, SHOWN, Colleague, texted

    with cluster(sandbox, postgres, tmp_path) as c:
        for point in ("during the re-check", "after the re-check", "between two sends"):
            sandbox.reset()
            colleague = Colleague(sandbox, POINTS[point])
            async with client(c.replica_url(0)) as first:
                asked = await first.session.call_tool(*GROUP_SMS, allow_input_required=True)
            assert isinstance(asked, types.InputRequiredResult)
            colleague.arm()
            async with client(c.replica_url(1)) as second, anyio.create_task_group() as tasks:
                tasks.start_soon(colleague.watch)
                answered = await second.call_tool(
                    *GROUP_SMS, input_responses={"confirm": ACCEPTED}, request_state=asked.request_state
                )
            assert colleague.changed and not answered.is_error, (point, answered)
            assert texted(sandbox) == SHOWN, point


# ------------------------------------------------------------------ failures


async def test_a_replica_killed_mid_send_leaves_every_attempt_in_the_audit_and_nothing_twice(
    sandbox, postgres, tmp_path
):
    with cluster(sandbox, postgres, tmp_path, policy='[policy]\ncostly = "allow"\n') as c:
        sandbox.fault(method="POST", path="/api/v2/switch/dial", hold=True, count=12)  # performed, held
        outcomes: dict[int, Any] = {}

        async def call(i: int) -> None:
            try:
                async with client(c.url, token="sandbox-tenant-kill") as session:
                    outcomes[i] = await session.call_tool(CALL, to(i))
            except Exception as exc:  # the replica died under this request: nginx answered 502
                outcomes[i] = exc

        async with anyio.create_task_group() as tasks:
            for i in range(12):
                tasks.start_soon(call, i)
            with anyio.fail_after(60):  # every call performed, its answer held: then the kill
                while len(await anyio.to_thread.run_sync(dials, sandbox)) < 12:
                    await anyio.sleep(0.05)
            os.kill(c.replicas[1].pid, signal.SIGKILL)
            await anyio.to_thread.run_sync(lambda: sandbox.control.post("/_sandbox/faults/release"))
        async with open_store(c.store, tmp_path) as store:
            audit = await store.recent(100)
    dialled = dials(sandbox)
    recorded = {r["arguments"]["to_number"]: r["decision"] for r in audit}
    lost = [i for i, outcome in outcomes.items() if not isinstance(outcome, types.CallToolResult)]
    print(f"\nSIGKILL mid-send: {len(dialled)} calls placed, {len(lost)} answers lost with the replica, "
          f"audit: {sorted(recorded.values())}")  # fmt: skip
    assert len(dialled) == len(set(dialled))  # nothing twice (nginx does not resend a POST)
    assert set(dialled) <= set(recorded)  # every call placed has its record
    assert lost and all(recorded[number(i)] == "outcome_unknown" for i in lost)
    assert set(recorded.values()) <= {"sent", "outcome_unknown"}


async def test_postgres_stopped_and_started_during_a_run(sandbox, postgres, tmp_path):
    """While it is down every replica knows it is not ready, so nginx's last try is served anyway:
    gated calls fail closed, reads go on."""
    with cluster(sandbox, postgres, tmp_path) as c:
        pids = [p.pid for p in c.replicas]
        async with client(c.url, token="sandbox-tenant-pg") as session:
            before = await session.call_tool(CALL, to(0))
            postgres.stop()
            try:
                await until_readiness(c, [503, 503, 503])
                down = [await session.call_tool(CALL, to(i)) for i in range(1, 4)]
                reads = [await session.call_tool("list_tags", {}) for _ in range(3)]
            finally:
                postgres.start()
            after = [await session.call_tool(CALL, to(i)) for i in range(4, 7)]
        alive = [p.poll() is None for p in c.replicas]
    assert not before.is_error and all(not r.is_error for r in after)
    assert all(error_of(r)["code"] == "unavailable" for r in down)
    assert all(not r.is_error for r in reads)  # reads need no store
    assert alive == [True, True, True] and [p.pid for p in c.replicas] == pids  # no restart
    numbers = dials(sandbox)
    assert len(numbers) == len(set(numbers)) == 4


async def test_a_replica_that_is_not_ready_is_routed_around(sandbox, postgres, tmp_path):
    """Replica 2 cannot reach the store (its RELATEL_MCP_STORE names a closed port): it answers
    nginx's requests with 503 before anything runs, and nginx passes them on. Every call through
    nginx is sent by replica 0 or 1 (on replica 2 a gated call would fail closed); replica 2 ran
    none."""
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    allow = '[policy]\ncostly = "allow"\n'
    with cluster(
        sandbox,
        postgres,
        tmp_path,
        allow,
        replica_env=lambda i: {"RELATEL_MCP_STORE": nowhere} if i == 2 else {},
    ) as c:
        await until_readiness(c, [200, 200, 503])
        async with client(c.url, token="sandbox-tenant-ready") as session:
            results = [await session.call_tool(CALL, to(i)) for i in range(12)]
        metrics = [await metrics_of(c, i) for i in range(3)]
    sent = 'relatel_mcp_tool_calls_total{decision="sent",tool="initiate_call"}'
    calls = [sum(v for k, v in m.items() if k.startswith("relatel_mcp_tool_calls_total{")) for m in metrics]
    refused = metrics[2].get('relatel_mcp_not_ready_refusals_total{path="/mcp"}', 0)
    print(f"\none of three replicas not ready: calls run {calls}, refused by replica 2: {refused:g}")
    assert [error_of(r) for r in results if r.is_error] == []
    assert sorted(dials(sandbox)) == sorted(number(i) for i in range(12))
    assert metrics[0].get(sent, 0) + metrics[1].get(sent, 0) == 12 and calls[2] == 0
    assert refused >= 4  # a third of the requests, at least, went there first


# ------------------------------------------------------------------ the deployment to copy


def test_the_compose_deployment_is_three_stateless_replicas_sharing_a_store_and_a_secret():
    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    replicas = {name: s for name, s in compose["services"].items() if name.startswith("relatel-mcp-")}
    assert len(replicas) == 3
    for service in replicas.values():
        assert "--stateless" in service["command"] and service["build"] == ".."
        assert service["environment"]["RELATEL_MCP_STORE"].startswith("postgresql://relatel:")
        assert service["environment"]["RELATEL_MCP_SECRET"].startswith("${RELATEL_MCP_SECRET:?")
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert all(f"server {name}:8080;" in nginx_conf for name in replicas)
    mounted = compose["services"]["nginx"]["volumes"]
    assert "./relatel-mcp.locations.conf:/etc/nginx/relatel-mcp.locations.conf:ro" in mounted


def test_the_shipped_nginx_conf_is_valid(tmp_path):
    """`nginx -t` on deploy/nginx.conf, with the replicas' names pointed at loopback."""
    import shutil

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        missing("nginx (Debian package nginx-light)")
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = re.sub(r"relatel-mcp-\d:8080", "127.0.0.1:8080", conf).replace(
        "/etc/nginx/relatel-mcp.locations.conf", str(ROOT / "deploy" / "relatel-mcp.locations.conf")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n{conf}"
    )
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ the legacy SSE transport


def sse_from(url: str, address: str) -> Any:
    """An SSE client transport through nginx whose connections come from `address` (any of
    127.0.0.0/8 reaches loopback), so that nginx sees clients at several addresses."""

    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
        transport = httpx2.AsyncHTTPTransport(local_address=address)
        return httpx2.AsyncClient(transport=transport, headers=headers, timeout=timeout, auth=auth)

    headers = {"Authorization": "Bearer sandbox-admin"}
    return sse_client(f"{url}/sse", headers=headers, httpx_client_factory=factory)


async def test_sse_sessions_through_nginx_stay_on_the_replica_that_holds_their_stream(
    sandbox, postgres, tmp_path
):
    """An SSE session lives in the replica that opened its stream; its messages are POSTs of
    their own, which another replica answers 404. nginx pins /sse and /messages/ to one replica
    per client address: eight clients at as many addresses call tools, and every call arrives."""
    with cluster(sandbox, postgres, tmp_path) as c:
        results: dict[str, list[types.CallToolResult]] = {}

        async def calls(address: str) -> None:
            async with Client(sse_from(c.url, address)) as session:
                results[address] = [await session.call_tool("list_tags", {}) for _ in range(3)]

        async with anyio.create_task_group() as tasks:
            for i in range(2, 10):
                tasks.start_soon(calls, f"127.0.0.{i}")
        metrics = [await metrics_of(c, i) for i in range(3)]
    key = 'relatel_mcp_tool_calls_total{decision="sent",tool="list_tags"}'
    served = [int(m.get(key, 0)) for m in metrics]
    print(f"\n8 SSE sessions through nginx, 3 calls each: calls served by each replica {served}")
    assert [r.is_error for calls in results.values() for r in calls] == [False] * 24
    assert sum(served) == 24 and all(n % 3 == 0 for n in served)  # each session whole on one replica
