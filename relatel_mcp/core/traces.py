"""OpenTelemetry traces: a span for each tool call, its steps as children, and their export.

Spans go through the OpenTelemetry API alone (the tracer `relatel_mcp`). The SDK's `tools/call`
SERVER span, which continues the client's `traceparent` from the request's `_meta`, is the
current span when a call starts, so the call's span is its child and the trace is the client's.

    call {tool}          gen_ai.tool.name, relatel.tool.kind, relatel.tool.toolset,
                         relatel.channel.human, relatel.channel.modern; at the end
                         relatel.decision, relatel.approval, relatel.upstream.status,
                         relatel.outcome_unknown, error.type
      validate           error.type
      gate               relatel.gate.mode, relatel.gate.decision, relatel.approval, error.type;
                         events asked (relatel.ask.via), answered (relatel.answer.action,
                         relatel.answer.confirmed), page_decided (relatel.page.decision)
        facts            relatel.facts.destinations, .deliveries (counts), .budget, .spend
      {METHOD} {path}    one CLIENT span per HTTP attempt: http.request.method, url.template
                         (every value in the path as {}), server.address, server.port,
                         http.response.status_code, http.request.resend_count, error.type
      shape              error.type
      audit              relatel.audit.decision

Only fixed words, counts, statuses and the catalogue's own names: never a credential, a phone
number, a message's text, an argument's value, a query string or an exception's message.

With no tracer provider installed (no OTEL_* asking for traces, and an app that installed none)
no span is even started: each helper hands back one shared do-nothing context. A step's span is
started only inside a recording one (a call's, or the SDK's around a request such as
resources/read), so reads at start-up are in no trace. `exporting` installs the SDK (the `otel`
extra) for `relatel-mcp serve` where settings.py says traces are asked for; nothing imports the
SDK otherwise.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, ProxyTracerProvider, Span, SpanKind, StatusCode

from .. import __version__
from .errors import ToolError

if TYPE_CHECKING:
    from .catalog import Operation

TRACER = trace.get_tracer("relatel_mcp", __version__)
NO_SPAN: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)  # reusable: it does nothing
INSTALL = "pip install 'relatel-mcp[otel]'"


def live() -> bool:
    """Is a tracer provider installed (ours, or an app's around the Toolkit)? Asked once a call."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)


def inside() -> bool:
    """Is a span being recorded here (a call's, or the SDK's around a request)? A step is a span
    only inside one: cheaper to ask than `live`, and no step is a trace of its own."""
    return trace.get_current_span().is_recording()


def span(
    name: str, attributes: dict[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span]:
    """A span around a step, current inside it; a ToolError (or any exception) leaving it sets
    `error.type` to its code (or its class), never its message."""
    if not inside():
        return NO_SPAN
    return _span(name, attributes, kind)


@contextmanager
def _span(name: str, attributes: dict[str, Any] | None, kind: SpanKind) -> Iterator[Span]:
    with TRACER.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except ToolError as error:
            failed(current, error.code)
            raise
        except Exception as exc:
            failed(current, type(exc).__qualname__)
            raise


def failed(current: Span, code: str) -> None:
    current.set_attribute("error.type", code)
    current.set_status(StatusCode.ERROR)


def tool_call(op: Operation, *, human: bool, modern: bool) -> AbstractContextManager[Span]:
    """The span of one tool call: what the tool is, and how this call can reach a human."""
    if not live():
        return NO_SPAN
    return _span(
        f"call {op.name}",
        {
            "gen_ai.tool.name": op.name,
            "relatel.tool.kind": op.kind,
            "relatel.tool.toolset": op.toolset,
            "relatel.channel.human": human,
            "relatel.channel.modern": modern,
        },
        SpanKind.INTERNAL,
    )


def called(current: Span, decision: str, approval: str | None, status: int | None, error: str | None) -> None:
    """What became of a call: its decision (as its log line says it), how it was let through,
    Relatel's last status, and its error code."""
    if not current.is_recording():
        return
    current.set_attribute("relatel.decision", decision)
    current.set_attribute("relatel.outcome_unknown", error == "outcome_unknown")
    if approval is not None:
        current.set_attribute("relatel.approval", approval)
    if status is not None:
        current.set_attribute("relatel.upstream.status", status)
    if error is not None:
        failed(current, error)


# How the gate let a call through (Approval.channel), and what its refusals mean, as decisions.
GATE_DECISIONS = {
    "elicitation": "approved",
    "approval_page": "approved",
    "preview_token": "approved",
    "policy_allow": "allowed",
    "dry_run": "dry_run",
    "none": "none",
}
GATE_REFUSALS = {"declined": "declined", "refused": "refused", "confirmation_required": "preview"}


def gate(mode: str | None) -> AbstractContextManager[Span]:
    """The span of the gate: the operator's mode for the kind, then what it decided."""
    if not inside():
        return NO_SPAN
    return _gate(mode)


@contextmanager
def _gate(mode: str | None) -> Iterator[Span]:
    with _span("gate", {"relatel.gate.mode": mode or "none"}, SpanKind.INTERNAL) as current:
        try:
            yield current
        except ToolError as error:
            current.set_attribute("relatel.gate.decision", GATE_REFUSALS.get(error.code, "error"))
            raise


def gated(current: Span, approval: str | None) -> None:
    """The gate let the call through (`approval`: how), or asked (None: a 2026-07-28 question)."""
    if not current.is_recording():
        return
    if approval is None:
        current.set_attribute("relatel.gate.decision", "asked")
        return
    current.set_attribute("relatel.gate.decision", GATE_DECISIONS.get(approval, approval))
    current.set_attribute("relatel.approval", approval)


def upstream(base_url: str, method: str, path: str, attempt: int) -> AbstractContextManager[Span]:
    """The CLIENT span of one HTTP attempt to Relatel: its path with every value taken out."""
    if not inside():
        return NO_SPAN
    template = path_template(path)
    url = urlsplit(base_url)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.template": template,
        "server.address": url.hostname or "",
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }
    if attempt:
        attributes["http.request.resend_count"] = attempt
    return _span(f"{method} {template}", attributes, SpanKind.CLIENT)


def responded(current: Span, status: int) -> None:
    """An HTTP attempt's status (a 4xx or 5xx is its error.type, as HTTP spans say it)."""
    if not current.is_recording():
        return
    current.set_attribute("http.response.status_code", status)
    if status >= 400:
        failed(current, str(status))


def path_template(path: str) -> str:
    """/api/v2/contacts/by_number/4528114477 -> /api/v2/contacts/by_number/{}: only the
    catalogue's own words are kept (an id, a number or a UUID in a path is a value)."""
    words = _words()
    return "/".join(part if part in words or not part else "{}" for part in path.split("?")[0].split("/"))


@cache
def _words() -> frozenset[str]:
    from .catalog import load

    return frozenset(part for op in load() for part in op.path.split("/") if "{" not in part)


def event(name: str, attributes: dict[str, Any]) -> None:
    """Something that happened inside the current span (a question asked, an answer)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.add_event(name, attributes)


def note(attributes: dict[str, Any]) -> None:
    """Attributes of the current span, set where they become known."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(attributes)


# ------------------------------------------------------------------------------ export


@contextlib.contextmanager
def exporting(asked_by: str | None, problem: str | None = None) -> Iterator[None]:
    """While a server runs: its spans (and the SDK's) batched and exported over OTLP/HTTP, where
    `asked_by` names the OTEL_* variable that asked for traces (settings.py decides); flushed and
    shut down when it stops. The OpenTelemetry SDK reads the rest of OTEL_* itself (endpoint,
    headers, timeouts, service name, sampler). A `problem` (traces asked for in a way this server
    does not export) or a missing `otel` extra is one line on stderr, and serving goes on."""
    if problem is not None:
        print(f"relatel-mcp: {problem}", file=sys.stderr, flush=True)
    if asked_by is None:
        yield
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        print(
            f"relatel-mcp: {asked_by} asks for traces, but the OpenTelemetry SDK is not installed: "
            f"{INSTALL}. Serving without traces.",
            file=sys.stderr,
            flush=True,
        )
        yield
        return
    detected = Resource.create()  # a service name or version the environment gives wins over ours
    ours = {"service.version": __version__} if "service.version" not in detected.attributes else {}
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        ours["service.name"] = "relatel-mcp"
    provider = TracerProvider(resource=detected.merge(Resource(ours)), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()  # what is still batched goes out before the process ends
