"""GET /readyz over real HTTP: ready while the state store and Relatel answer, not ready (saying
why, never with a credential) while either does not, and ready again when it is back, without a
restart; probes cannot flood either; and the 503 a proxy asks for while a replica is not ready.
Relatel goes away as a closed port and comes back as a sandbox on that port; PostgreSQL is a real
server (tests/services.py), stopped and started by its pid."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import anyio
import httpx2
import pytest
from mcp import Client

from relatel_mcp.front.operations import TTL
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.policy import Policy
from relatel_mcp.sandbox import SandboxServer
from relatel_mcp.upstream.client import PROBE_PATH

from .services import Postgres, free_port
from .support import INITIALIZE, MCP_HEADERS, error_of, http_transport, serve_http, settings_for

pytestmark = pytest.mark.anyio

KEY = "key-one-0123456789abcdef"
METRICS = "metrics-7Hq2vX9c-0123456789abcdef"
IF_NOT_READY = {"X-Relatel-MCP-If-Not-Ready": "503"}  # what nginx sends (deploy/relatel-mcp.locations.conf)
OPTIONS = HttpOptions(auth="api-key", api_keys=(KEY,), metrics_token=METRICS)


async def readyz(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
        return await http.get("/readyz")


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 4 * TTL + 10) -> None:
    """Poll until `check()` holds: an answer is kept TTL seconds, so a change shows within that."""
    with anyio.fail_after(seconds):
        while not await check():
            await anyio.sleep(0.2)


async def status_is(url: str, status: int) -> bool:
    return (await readyz(url)).status_code == status


# ------------------------------------------------------------------ Relatel


async def test_ready_while_the_store_and_relatel_answer_and_no_credential_is_needed(sandbox, tmp_path):
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), OPTIONS) as url:
        response = await readyz(url)
        async with httpx2.AsyncClient(base_url=url) as http:
            health = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    assert health.status_code == 200 and health.json()["status"] == "ok"  # liveness, apart
    probes = [r for r in sandbox.requests() if r["path"] == PROBE_PATH]
    assert [(r["method"], r["token_fp"]) for r in probes] == [("GET", None)]  # no token went along


@pytest.mark.slow  # waits for a kept answer to be checked again (TTL)
async def test_not_ready_while_relatel_is_unreachable_and_ready_once_it_answers(tmp_path):
    port = free_port()  # nothing listens here yet
    with serve_http(settings_for(f"http://127.0.0.1:{port}", state_dir=tmp_path), OPTIONS) as url:
        down = await readyz(url)
        sandbox = SandboxServer(port=port).start_thread()
        try:
            await until(lambda: status_is(url, 200))
            up = await readyz(url)
        finally:
            sandbox.stop()
    assert down.status_code == 503 and down.json()["status"] == "not_ready"
    assert down.json()["reasons"] == ["Relatel unreachable: could not connect (ConnectError)"]
    assert up.json() == {"status": "ready"}


async def test_probes_cannot_flood_relatel(sandbox, tmp_path):
    """Probes at once wait for the one check under way; those after it get its answer, kept TTL s."""
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), OPTIONS) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            answers: list[int] = []

            async def probe() -> None:
                answers.append((await http.get("/readyz")).status_code)

            started = time.monotonic()
            for _ in range(2):
                async with anyio.create_task_group() as probes:
                    for _ in range(50):
                        probes.start_soon(probe)
            quick = time.monotonic() - started < TTL  # else the answer may rightly be checked again
    checks = [r for r in sandbox.requests() if r["path"] == PROBE_PATH]
    assert answers == [200] * 100
    assert len(checks) == 1 if quick else 1 <= len(checks) <= 2


@pytest.mark.slow  # waits for a kept answer to be checked again (TTL)
async def test_a_replica_that_is_not_ready_refuses_only_what_a_proxy_can_send_elsewhere(tmp_path):
    """While Relatel is unreachable: /mcp and /sse marked by the proxy get 503 before anything
    runs (no credential is even looked at); unmarked requests, and /messages/ (a session lives on
    one replica), are served as always. Once Relatel answers, marked requests are served too."""
    port = free_port()
    with serve_http(settings_for(f"http://127.0.0.1:{port}", state_dir=tmp_path), OPTIONS) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            key = {**MCP_HEADERS, "Authorization": f"Bearer {KEY}"}
            refused = await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **IF_NOT_READY})
            async with http.stream("GET", "/sse", headers={**key, **IF_NOT_READY}) as opened:
                refused_sse = opened.status_code  # a stream that opens (200) would last: only its status
            served = await http.post("/mcp", json=INITIALIZE, headers=key)
            message = await http.post(
                f"/messages/?session_id={uuid.uuid4().hex}", json={}, headers={**key, **IF_NOT_READY}
            )
            sandbox = SandboxServer(port=port).start_thread()
            try:
                await until(lambda: status_is(url, 200))
                marked = await http.post("/mcp", json=INITIALIZE, headers={**key, **IF_NOT_READY})
            finally:
                sandbox.stop()
            metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "not_ready" and refused.json()["reasons"][0].startswith(
        "Relatel unreachable"
    )
    assert refused_sse == 503
    assert served.status_code == 200 and message.status_code == 404  # no such session: not refused
    assert marked.status_code == 200
    assert 'relatel_mcp_not_ready_refusals_total{path="/mcp"} 1.0' in metrics.text
    assert 'relatel_mcp_not_ready_refusals_total{path="/sse"} 1.0' in metrics.text


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.remove()


@pytest.mark.slow
async def test_not_ready_while_postgres_is_stopped_and_ready_once_it_is_back(sandbox, postgres, tmp_path):
    """The reasons name the store, never its URL or password; a gated call meanwhile fails closed
    and counts as a store error; reads go on."""
    postgres.create_database("readiness")
    password = "pg-pass-Zq81xw"  # trust auth ignores it; it must show nowhere
    store = f"postgresql://postgres:{password}@127.0.0.1:{postgres.port}/readiness"
    settings = settings_for(sandbox.url, state_dir=tmp_path, store=store, policy=Policy(costly="allow"))
    with serve_http(settings, OPTIONS) as url:
        before = await readyz(url)
        postgres.stop()
        try:
            await until(lambda: status_is(url, 503))
            down = await readyz(url)
            async with Client(http_transport(url, KEY)) as session:
                gated = await session.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
                read = await session.call_tool("list_tags", {})
            async with httpx2.AsyncClient(base_url=url) as http:
                metrics = (await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})).text
        finally:
            postgres.start()
        await until(lambda: status_is(url, 200))
    assert before.json() == {"status": "ready"}
    reasons = down.json()["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith("store unreachable: ")
    assert (
        password not in down.text and str(postgres.port) not in down.text and "postgresql://" not in down.text
    )
    assert error_of(gated)["code"] == "unavailable" and not read.is_error
    assert "relatel_mcp_ready 0.0" in metrics
    assert 'relatel_mcp_dependency_up{dependency="store"} 0.0' in metrics
    assert 'relatel_mcp_dependency_up{dependency="relatel"} 1.0' in metrics
    assert _value(metrics, 'relatel_mcp_store_errors_total{backend="postgresql"}') >= 1


def _value(exposition: str, series: str) -> float:
    lines = [line for line in exposition.splitlines() if line.startswith(series + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0
