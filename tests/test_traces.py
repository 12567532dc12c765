"""Traces: `relatel-mcp serve` over stdio, exporting over OTLP/HTTP to a real receiver on loopback
(tests/otlp.py), driven by an MCP client that can ask its user and sends a `traceparent`.

The call is one trace with the client's: the SDK's `tools/call` span continues it from `_meta`,
the call's span is that span's child, and the pipeline's steps are the call's. What is exported
says what happened (asked, approved, sent) and never whose number, what text, or which token.
Spans are polled for, within a bound; no test waits a fixed time or looks at a duration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from relatel_mcp.core.traces import INSTALL, path_template
from relatel_mcp.settings import Environment, Traces, traces_asked

from .otlp import Span, otlp_receiver
from .support import EXE, answering, env, run, stdio

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # the client's trace, and the span it calls from
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
TEXT = "Kunden fra Vejle ringer tilbage kl. 15"
SMS = ("send_employee_sms", {"id": 2, "body": TEXT})  # employee 2: Jonas Nielsen, +45 20 44 55 66
NEVER = ("sandbox-admin", "4520445566", "20445566", "20 44 55 66", "Jonas", "Nielsen", "Vejle", TEXT)
STEPS = {"validate", "gate", "facts", "GET /api/v2/employees/{}", "POST /api/v2/employees/{}/message",
         "shape", "audit"}  # fmt: skip
# The server, with a line on stderr at exit saying whether the OpenTelemetry SDK was ever imported.
PROBE = (
    "import atexit, sys; "
    "atexit.register(lambda: print('SDK imported:', 'opentelemetry.sdk' in sys.modules, file=sys.stderr)); "
    "{before}from relatel_mcp.cli import main; main()"
)


def server_env(tmp_path: Path, sandbox: Any, **otel: str) -> dict[str, str]:
    """A server of the sandbox's account, with only the OTEL_* variables given."""
    base = {k: v for k, v in env().items() if not k.startswith("OTEL_")}
    return {**base, "RELATEL_TOKEN": "sandbox-admin", "RELATEL_BASE_URL": sandbox.url,
            "RELATEL_MCP_STATE_DIR": str(tmp_path / "state"), **otel}  # fmt: skip


def ours(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.scope == "relatel_mcp"]


def sent(spans: list[Span]) -> bool:
    """Has the call that sent the SMS arrived, with its audit?"""
    return any(s.name == "call send_employee_sms" and s.attributes.get("relatel.decision") == "sent"
               for s in spans) and sum(s.name == "audit" for s in spans) >= 2  # fmt: skip


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_gated_call_is_one_trace_with_the_client_from_the_call_to_its_audit(mode, sandbox, tmp_path):
    with otlp_receiver() as receiver:
        # Exported only when the batch is flushed as the server stops: the client closing stdin.
        variables = server_env(tmp_path, sandbox, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                               OTEL_BSP_SCHEDULE_DELAY="600000")  # fmt: skip
        params = StdioServerParameters(command=EXE, args=["serve"], env=variables)
        async with Client(params, mode=mode, elicitation_callback=answering()) as client:
            result = await client.call_tool(*SMS, meta={"traceparent": TRACEPARENT})
        assert not result.is_error, result
        spans = receiver.wait_for(sent)
    assert receiver.refused == []

    by_id = {s.span_id: s for s in spans}
    servers = [s for s in spans if s.kind == "server" and s.name == "tools/call send_employee_sms"]
    calls = [s for s in spans if s.name == "call send_employee_sms"]
    # One tools/call (2025-11-25: asked on the back-channel), or two (2026-07-28: the question
    # is the first call's result, the answer comes with the second): each continues the client's.
    assert len(servers) == len(calls) == (1 if mode == "legacy" else 2)
    for server, call in zip(servers, calls, strict=True):
        assert (server.trace_id, server.parent_id) == (TRACE_ID, CLIENT_SPAN)
        assert call.parent_id == server.span_id and call.kind == "internal"
        assert server.attributes["network.transport"] == "pipe"
        assert call.attributes["gen_ai.tool.name"] == "send_employee_sms"
        assert call.attributes["relatel.tool.kind"] == "costly"
        assert call.attributes["relatel.channel.human"] is True
        assert call.attributes["relatel.channel.modern"] is (mode == "auto")
    # Everything under the calls is the client's trace (start-up's reads of the account, and
    # initialize and tools/list, which the client sent without a traceparent, are traces of their own).
    by_id = {s.span_id: s for s in spans}

    def root(span: Span) -> Span:
        return root(by_id[span.parent_id]) if span.parent_id in by_id else span

    assert {root(s).span_id for s in spans if s.trace_id == TRACE_ID} == {s.span_id for s in servers}

    # The steps, each a child of the call (the facts of the gate, and their reads of the facts').
    def under(span: Span) -> Span:
        return by_id[span.parent_id]

    last = calls[-1]
    steps = [
        s for s in ours(spans) if s.trace_id == last.trace_id and s.start >= last.start and s is not last
    ]
    assert {s.name for s in steps} == STEPS
    for step in steps:
        parent = under(step)
        if step.name == "facts":
            assert parent.name == "gate"
        elif step.name.startswith("GET "):  # the facts read the employee they are about
            assert parent.name == "facts" and step.kind == "client"
        else:
            assert parent is last, step.name
    gate = next(s for s in steps if s.name == "gate")
    post = next(s for s in steps if s.name.startswith("POST "))
    assert post.kind == "client" and post.attributes["http.request.method"] == "POST"
    assert post.attributes["url.template"] == "/api/v2/employees/{}/message"
    assert post.attributes["http.response.status_code"] in (200, 201)
    assert "http.request.resend_count" not in post.attributes  # sent once: a costly call is never repeated
    assert [s.attributes["relatel.audit.decision"] for s in steps if s.name == "audit"] == ["sending", "sent"]
    assert next(s for s in steps if s.name == "facts").attributes["relatel.facts.budget"] == "sms_segments"

    # asked → approved → sent
    asked = [e for s in ours(spans) if s.name == "gate" for e in s.events if e[0] == "asked"]
    assert asked == [("asked", {"relatel.ask.via": "form"})]
    if mode == "auto":
        first_gate = next(s for s in ours(spans) if s.name == "gate" and under(s) is calls[0])
        assert first_gate.attributes["relatel.gate.decision"] == "asked"
        assert calls[0].attributes["relatel.decision"] == "asked"
    assert gate.attributes["relatel.gate.mode"] == "confirm"
    assert gate.attributes["relatel.gate.decision"] == "approved"
    assert ("answered", {"relatel.answer.action": "accept", "relatel.answer.confirmed": True}) in gate.events
    assert last.attributes["relatel.decision"] == "sent"
    assert last.attributes["relatel.approval"] == "elicitation"
    assert last.attributes["relatel.upstream.status"] in (200, 201)
    assert last.attributes["relatel.outcome_unknown"] is False
    assert not last.error and "error.type" not in last.attributes
    assert spans[0].resource["service.name"] == "relatel-mcp"

    # Nothing exported holds the token, the number, the name or the text: the whole export, as
    # sent over the wire and as decoded.
    wire = b"".join(receiver.bodies)
    decoded = receiver.text() + json.dumps([vars(s) for s in spans], ensure_ascii=False)
    for secret in NEVER:
        assert secret.encode() not in wire and secret not in decoded, secret


@pytest.mark.parametrize(
    "otel",
    [
        {},  # nothing asks for traces
        {"OTEL_SERVICE_NAME": "relatel"},  # the SDK's settings alone do not ask for them
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{url}", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{url}", "OTEL_TRACES_EXPORTER": "none"},
    ],
    ids=["unset", "service-name-only", "sdk-disabled", "exporter-none"],
)
async def test_without_traces_asked_for_nothing_is_exported_and_the_sdk_is_not_imported(
    otel, sandbox, tmp_path
):
    with otlp_receiver() as receiver:
        asked = {name: value.format(url=receiver.url) for name, value in otel.items()}
        logged = await serve_and_call(tmp_path, sandbox, asked, PROBE.format(before=""))
        assert receiver.exports == [] and receiver.refused == []  # the server has exited: nothing pending
    assert "SDK imported: False" in logged, logged


async def test_without_the_extra_one_line_says_how_to_install_it_and_the_server_serves(sandbox, tmp_path):
    halted = "sys.modules['opentelemetry.sdk'] = None; "  # as if relatel-mcp[otel] were not installed
    with otlp_receiver() as receiver:
        asked = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        logged = await serve_and_call(tmp_path, sandbox, asked, PROBE.format(before=halted))
        assert receiver.exports == []
    told = [line for line in logged.splitlines() if INSTALL in line]
    assert told == [
        f"relatel-mcp: OTEL_EXPORTER_OTLP_ENDPOINT asks for traces, but the OpenTelemetry SDK is not "
        f"installed: {INSTALL}. Serving without traces."
    ]
    assert "Traceback" not in logged


async def serve_and_call(tmp_path: Path, sandbox: Any, otel: dict[str, str], start: str) -> str:
    """Serve with `otel`, make a gated call that is approved and sent, stop; what went to stderr."""
    params = StdioServerParameters(
        command=sys.executable, args=["-c", start, "serve"], env=server_env(tmp_path, sandbox, **otel)
    )
    said: list[str] = []
    async with Client(stdio(params, said), elicitation_callback=answering()) as client:
        result = await client.call_tool(*SMS, meta={"traceparent": TRACEPARENT})
    assert not result.is_error, result
    assert len(sandbox.outbox()) == 1  # sent
    return said[0]


def test_the_standard_variables_decide_whether_traces_are_exported():
    def decided(**variables: str) -> Traces:
        return traces_asked(Environment.read(variables))

    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert decided() == Traces()
    assert decided(**endpoint) == Traces(asked_by="OTEL_EXPORTER_OTLP_ENDPOINT")
    assert decided(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://c:4318/v1/traces") == Traces(
        asked_by="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    assert decided(OTEL_TRACES_EXPORTER="otlp") == Traces(asked_by="OTEL_TRACES_EXPORTER")
    assert decided(**endpoint, OTEL_TRACES_EXPORTER="otlp") == Traces(asked_by="OTEL_EXPORTER_OTLP_ENDPOINT")
    assert decided(**endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf").asked_by is not None
    for off in (
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_SDK_DISABLED": "TRUE"},
        {"OTEL_TRACES_EXPORTER": "none"},
    ):
        assert decided(**endpoint, **off) == Traces()
    assert decided(**endpoint, OTEL_SDK_DISABLED="false").asked_by is not None
    assert decided(OTEL_SERVICE_NAME="x", OTEL_EXPORTER_OTLP_HEADERS="a=b") == Traces()  # the SDK's own
    for unsupported, problem in [
        ({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER=console is not supported"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "TRACES_PROTOCOL=http/json is not supported"),
    ]:
        traces = decided(**endpoint, **unsupported)
        assert traces.asked_by is None and traces.problem is not None and problem in traces.problem


def test_a_path_keeps_only_the_catalogues_words():
    assert path_template("/api/v2/contacts/by_number/4528114477") == "/api/v2/contacts/by_number/{}"
    assert path_template("/api/v2/calls/0b1c2d3e-aaaa-bbbb-cccc-000000000001") == "/api/v2/calls/{}"
    assert path_template("/api/v2/employee") == "/api/v2/employee"
    assert path_template("/api/v2/Jonas Nielsen/x?to=4520445566") == "/api/v2/{}/{}"


def test_the_cli_says_a_problem_and_serves_on():
    """An exporter this server does not have is one line at start-up, not a stop."""
    done = run(
        [EXE, "serve", "--sandbox"],
        env={**{k: v for k, v in env().items() if not k.startswith("OTEL_")}, "OTEL_TRACES_EXPORTER": "zipkin"},
        timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "relatel-mcp: OTEL_TRACES_EXPORTER=zipkin is not supported" in done.stderr
    assert "Traceback" not in done.stderr
