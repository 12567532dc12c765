"""Prometheus metrics at GET /metrics, scraped over real HTTP from a server on a loopback socket
while real MCP clients call tools against the sandbox: who may scrape, that the counters move by
exactly the calls made, and that no label is ever an account, a token, an id or a number."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from relatel_mcp import __version__
from relatel_mcp.core import catalog
from relatel_mcp.core.metrics import GATE_OUTCOMES, LATENCY_BUCKETS, STATUS_CLASSES, TRANSPORTS
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets
from relatel_mcp.upstream.client import PROBE_PATH, Tenant

from .hygiene import HYGIENE, HYGIENE_TOKEN
from .services import free_port, stop_pid
from .support import answering, env, error_of, http_transport, serve_http, settings_for, sse_transport

pytestmark = pytest.mark.anyio

KEY = "key-one-0123456789abcdef"  # the MCP clients' API key
TOKEN = "metrics-7Hq2vX9c-0123456789abcdef"  # Prometheus's bearer
CALL = "initiate_call"
TO = {"to_number": "+45 28 11 44 77"}
LOST = {"to_number": "+45 28 11 44 78"}
ABROAD = {"to_number": "+44 20 7946 0000"}  # outside the default allow-list (45)
# The audit's decisions (relatel_mcp/policy/audit.py), and the pipeline's own two.
DECISIONS = {
    "sent",
    "failed",
    "declined",
    "refused",
    "preview",
    "asked",
    "dry_run",
    "invalid",
    "outcome_unknown",
}
DECISIONS |= {"unavailable", "error"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server(sandbox, tmp_path):
    policy = Policy(budgets=Budgets(calls=2))
    settings = settings_for(sandbox.url, state_dir=tmp_path, policy=policy)
    with serve_http(settings, HttpOptions(auth="api-key", api_keys=(KEY,), metrics_token=TOKEN)) as url:
        yield url


async def scrape(url: str, token: str = TOKEN) -> str:
    async with httpx2.AsyncClient(base_url=url) as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.text


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """How much each labelled series of `name` moved (absent counts as 0), where it moved."""
    keys = {labels for sample, labels in (*before, *after) if sample == name}
    change = {
        tuple(sorted(labels)): after.get((name, labels), 0.0) - before.get((name, labels), 0.0)
        for labels in keys
    }
    return {labels: delta for labels, delta in change.items() if delta}


def of(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


# ------------------------------------------------------------------ who may scrape


async def test_metrics_are_not_there_while_no_token_is_set(sandbox, tmp_path):
    with serve_http(
        settings_for(sandbox.url, state_dir=tmp_path), HttpOptions(auth="api-key", api_keys=(KEY,))
    ) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            answers = [
                await http.get("/metrics", headers=headers)
                for headers in ({}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"Bearer {TOKEN}"})
            ]
    assert [a.status_code for a in answers] == [404, 404, 404]


async def test_only_the_metrics_token_may_scrape_and_it_is_never_logged(server, caplog):
    caplog.set_level(logging.DEBUG)
    async with httpx2.AsyncClient(base_url=server) as http:
        refused = {
            name: await http.get("/metrics", headers=headers)
            for name, headers in {
                "none": {},
                "wrong": {"Authorization": "Bearer metrics-7Hq2vX9c-0123456789abcdeX"},
                "a prefix of it": {"Authorization": f"Bearer {TOKEN[:-1]}"},
                "the MCP key": {"Authorization": f"Bearer {KEY}"},
                "not a bearer": {"Authorization": f"Basic {TOKEN}"},
            }.items()
        }
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        mcp_without_key = await http.post("/mcp", json={})
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 401)
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refused.values())
    assert right.status_code == 200 and right.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert f'relatel_mcp_info{{version="{__version__}"}} 1.0' in right.text
    assert mcp_without_key.status_code == 401  # /metrics has its own rule; MCP keeps its own
    lines = [json.dumps(getattr(r, "fields", None) or r.getMessage()) for r in caplog.records]
    assert any('"path": "/metrics"' in line for line in lines)  # the access log saw every scrape
    assert not any(TOKEN in line or TOKEN[:16] in line for line in lines)
    assert TOKEN not in right.text


# ------------------------------------------------------------------ the counters


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # 2025-11-25 elicitation; 2026-07-28 rounds
async def test_counters_move_by_exactly_the_calls_made(sandbox, server, mode):
    ask = 1 if mode == "legacy" else 2  # a 2026-07-28 question is a call of its own (decision: asked)
    yes = Client(http_transport(server, KEY), mode=mode, elicitation_callback=answering("accept"))
    no = Client(http_transport(server, KEY), mode=mode, elicitation_callback=answering("decline"))
    async with yes, no:
        await yes.call_tool("list_tags", {})  # the account's access, read once per server
        await no.list_tools()
        before = parse(await scrape(server))
        mark = len(sandbox.requests())
        read = await yes.call_tool("list_tags", {})  # a read, sent
        declined = await no.call_tool(CALL, TO)  # asked, declined
        approved = await yes.call_tool(CALL, TO)  # asked, approved, sent (1 of 2 calls in the budget)
        abroad = await yes.call_tool(CALL, ABROAD)  # refused by the destinations, before asking
        sandbox.fault(method="GET", path="/api/v2/tags", status=503)
        retried = await yes.call_tool("list_tags", {})  # 503, retried, sent
        sandbox.fault(method="POST", path="/api/v2/switch/dial", drop="after")
        lost = await yes.call_tool(CALL, LOST)  # asked, approved, performed, its answer lost
        over = await yes.call_tool(CALL, TO)  # the budget of 2 calls is spent: refused
        after = parse(await scrape(server))
        upstream = [r for r in sandbox.requests()[mark:] if r["path"] != PROBE_PATH]
    assert not read.is_error and not approved.is_error and not retried.is_error
    assert [error_of(r)["code"] for r in (declined, abroad, lost, over)] == [
        "declined", "refused", "outcome_unknown", "refused",
    ]  # fmt: skip

    asked = ask - 1  # the first round of each question asked (2026-07-28)
    assert moved(before, after, "relatel_mcp_tool_calls_total") == {
        k: v
        for k, v in {
            of(tool="list_tags", decision="sent"): 2,
            of(tool=CALL, decision="asked"): 3 * asked,
            of(tool=CALL, decision="declined"): 1,
            of(tool=CALL, decision="sent"): 1,
            of(tool=CALL, decision="refused"): 2,
            of(tool=CALL, decision="outcome_unknown"): 1,
        }.items()
        if v
    }
    assert moved(before, after, "relatel_mcp_gate_outcomes_total") == {
        of(tool=CALL, outcome="asked"): 3,
        of(tool=CALL, outcome="declined"): 1,
        of(tool=CALL, outcome="approved"): 2,
        of(tool=CALL, outcome="refused"): 2,
    }
    assert moved(before, after, "relatel_mcp_budget_spent_total") == {of(budget="calls"): 2}
    assert moved(before, after, "relatel_mcp_budget_exhausted_total") == {of(budget="calls"): 1}
    assert moved(before, after, "relatel_mcp_budget_refunded_total") == {}
    assert after[("relatel_mcp_budget_limit", frozenset({("budget", "calls")}))] == 2
    assert moved(before, after, "relatel_mcp_outcome_unknown_total") == {of(tool=CALL): 1}

    sent = Counter(r["method"] for r in upstream)
    responses = moved(before, after, "relatel_mcp_upstream_responses_total")
    assert {m: sum(v for k, v in responses.items() if ("method", m) in k) for m in sent} == sent
    assert responses[of(method="GET", status_class="5xx")] == 1  # the injected 503
    assert responses[of(method="POST", status_class="transport_error")] == 1  # the dropped answer
    assert responses[of(method="POST", status_class="2xx")] == 1  # the call that went through
    assert moved(before, after, "relatel_mcp_upstream_retries_total") == {of(method="GET"): 1}
    timed = moved(before, after, "relatel_mcp_upstream_request_duration_seconds_count")
    assert {dict(k)["method"]: v for k, v in timed.items()} == sent


async def test_open_sessions_go_up_and_down_with_each_transport(server):
    async def sessions() -> dict[str, float]:
        samples = parse(await scrape(server))
        return {t: samples[("relatel_mcp_open_sessions", frozenset({("transport", t)}))] for t in TRANSPORTS}

    async def until(expected: dict[str, float]) -> None:
        with anyio.fail_after(10):  # a closed session is gone when its handler has finished
            while await sessions() != expected:
                await anyio.sleep(0.05)

    assert await sessions() == {"streamable_http": 0, "sse": 0}
    async with Client(http_transport(server, KEY), mode="legacy") as first:  # a stateful session
        await first.list_tools()
        assert await sessions() == {"streamable_http": 1, "sse": 0}
        async with (
            Client(sse_transport(server, KEY)) as legacy,
            Client(http_transport(server, KEY), mode="legacy"),
        ):
            await legacy.list_tools()
            assert await sessions() == {"streamable_http": 2, "sse": 1}
        await until({"streamable_http": 1, "sse": 0})
    await until({"streamable_http": 0, "sse": 0})


async def test_each_server_counts_its_own_calls(sandbox, tmp_path, server):
    """A registry per App: two servers in one process do not share a count."""
    other_settings = settings_for(sandbox.url, state_dir=tmp_path / "other")
    options = HttpOptions(auth="api-key", api_keys=(KEY,), metrics_token=TOKEN)
    with serve_http(other_settings, options) as other:
        async with Client(http_transport(other, KEY)) as session:
            for _ in range(3):
                await session.call_tool("list_tags", {})
        mine, theirs = parse(await scrape(server)), parse(await scrape(other))
    calls = ("relatel_mcp_tool_calls_total", frozenset({("tool", "list_tags"), ("decision", "sent")}))
    assert calls not in mine and theirs[calls] == 3


async def test_a_question_nobody_answers_in_time_counts_as_timed_out(sandbox, tmp_path):
    settings = settings_for(sandbox.url, state_dir=tmp_path, policy=Policy(elicit_timeout_seconds=0.5))
    options = HttpOptions(auth="api-key", api_keys=(KEY,), metrics_token=TOKEN)
    with serve_http(settings, options) as url:
        slow = answering("accept", delay=3)
        async with Client(http_transport(url, KEY), mode="legacy", elicitation_callback=slow) as session:
            assert error_of(await session.call_tool(CALL, TO))["code"] == "declined"
        outcomes = moved({}, parse(await scrape(url)), "relatel_mcp_gate_outcomes_total")
    assert outcomes == {of(tool=CALL, outcome="asked"): 1, of(tool=CALL, outcome="timed_out"): 1}


# ------------------------------------------------------------------ the labels


async def test_no_label_is_an_account_a_token_an_id_or_a_number(sandbox, server):
    """Every label value of the whole exposition, after calls of every kind, is a tool's name or a
    fixed word; nothing the calls carried (the account, the token, a phone number, an id) is in it."""
    async with Client(http_transport(server, KEY), elicitation_callback=answering("accept")) as session:
        await session.call_tool(CALL, TO)
        await session.call_tool("get_employee", {"id": 2})
        await session.call_tool("get_employee", {"id": 987654})  # not found
        await session.call_tool("send_employee_sms", {"id": 2, "body": "Husk mødet 4528114477"})
        await session.call_tool("list_calls", {"limit": 3})
    text = await scrape(server)
    words: dict[str, Callable[[str], bool]] = {
        "tool": {op.name for op in catalog.load()}.__contains__,
        "decision": DECISIONS.__contains__,
        "outcome": set(GATE_OUTCOMES).__contains__,
        "budget": {"calls", "sms_segments", "orders"}.__contains__,
        "method": {"GET", "POST", "PUT", "PATCH", "DELETE"}.__contains__,
        "status_class": set(STATUS_CLASSES).__contains__,
        "transport": set(TRANSPORTS).__contains__,
        "backend": {"sqlite", "postgresql"}.__contains__,
        "dependency": {"store", "relatel"}.__contains__,
        "path": {"/mcp", "/sse"}.__contains__,
        "version": __version__.__eq__,
        "le": {*(f"{b:g}" if b < 1 else f"{b:.1f}" for b in LATENCY_BUCKETS), "+Inf"}.__contains__,
    }
    labels = [
        (name, value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name, value in sample.labels.items()
    ]
    assert labels and [(n, v) for n, v in labels if n not in words or not words[n](v)] == []
    assert all(not re.search(r"\d{3}", v) for n, v in labels if n not in ("le", "version")), labels
    account = Tenant(HYGIENE_TOKEN).id
    for secret in (HYGIENE_TOKEN, KEY, TOKEN, account, "4528114477", "28 11 44 77", "987654", "Husk"):
        assert secret not in text, secret


# ------------------------------------------------------------------ deploy/: the scrape config and the dashboard

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_the_scrape_config_reaches_each_replica_with_the_bearer_from_a_file():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    [job] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    replicas = sorted(name for name in compose["services"] if name.startswith("relatel-mcp-"))
    assert [t for c in job["static_configs"] for t in c["targets"]] == [f"{name}:8080" for name in replicas]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    assert "credentials" not in job["authorization"]  # never in the file itself
    secret = job["authorization"]["credentials_file"].removeprefix("/run/secrets/")
    prometheus = compose["services"]["prometheus"]
    assert secret in prometheus["secrets"] and compose["secrets"][secret] == {
        "environment": "RELATEL_MCP_METRICS_TOKEN"
    }
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    for name in replicas:
        assert (
            compose["services"][name]["environment"]["RELATEL_MCP_METRICS_TOKEN"]
            == "${RELATEL_MCP_METRICS_TOKEN:-}"
        )
    locations = (DEPLOY / "relatel-mcp.locations.conf").read_text()
    assert re.search(r"location = /metrics \{\s*return 404;", locations)  # per replica, never through nginx


async def test_the_dashboard_shows_every_metric_a_server_exports(server):
    families = [
        f for f in text_string_to_metric_families(await scrape(server)) if f.name != "relatel_mcp_info"
    ]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    exported = {f.name: {f.name + suffix for suffix in suffixes[f.type]} for f in families}
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    targets = [t for panel in dashboard["panels"] for t in panel.get("targets", [])]
    named = {name for t in targets for name in re.findall(r"\brelatel_mcp_\w+", t["expr"])}
    assert named <= set().union(*exported.values())  # every query names a series the server has
    assert [family for family, names in exported.items() if not names & named] == []  # every metric shown
    for t in targets:
        assert t["expr"].count("(") == t["expr"].count(")") and t["expr"].count("{") == t["expr"].count("}")
        assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert any("histogram_quantile(0.95" in t["expr"] for t in targets)
    assert any("histogram_quantile(0.5" in t["expr"] for t in targets)


# ------------------------------------------------------------------ what metrics cost while off

# The real server, with a line on stderr at exit saying whether prometheus-client was ever imported.
PROBE = (
    "import atexit, sys; atexit.register(lambda: print('prometheus_client imported:', "
    "'prometheus_client' in sys.modules, file=sys.stderr)); from relatel_mcp.cli import main; main()"
)


@pytest.mark.parametrize("token", [None, TOKEN])
def test_prometheus_client_is_imported_only_where_metrics_are_served(tmp_path, token):
    port = free_port()
    variables = env(
        RELATEL_MCP_STATE_DIR=str(tmp_path), **({"RELATEL_MCP_METRICS_TOKEN": token} if token else {})
    )
    command = [sys.executable, "-c", PROBE, "serve", "--sandbox", "--transport", "http", "--auth", "none"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=variables, stderr=subprocess.PIPE, text=True
    )
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                    time.sleep(0.1)
            status = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
    finally:
        stop_pid(server.pid)
        _, stderr = server.communicate(timeout=30)
        HYGIENE.scan_stderr("relatel-mcp serve --sandbox --transport http", stderr)
    assert status == (200 if token else 404)
    assert f"prometheus_client imported: {token is not None}" in stderr
