"""Prometheus metrics: what the server counts, defined once, recorded where it happens.

`Metrics` records nothing: it is what every part holds while RELATEL_MCP_METRICS_TOKEN is unset
(stdio, the Toolkit, and HTTP without the token), so a tool call pays a few empty method calls and
prometheus-client is never imported. `Prometheus` records into a `CollectorRegistry` of its own,
one per App (tests run many servers in one process; each replica is one process and serves its
own `/metrics`, so no multiprocess mode is needed). The App makes one and hands it down: the
pipeline, the gate, the upstream client, the store and the HTTP transports record into it.

Every label is the catalogue's tool name or a fixed word below: never an account, a token, a
phone number, an id or a path.

    relatel_mcp_tool_calls_total{tool,decision}          each tool call, by the audit's decision
    relatel_mcp_gate_outcomes_total{tool,outcome}        what the gate did with a costly or
                                                         destructive call (GATE_OUTCOMES)
    relatel_mcp_budget_spent_total{budget}               budget units taken just before sending
    relatel_mcp_budget_refunded_total{budget}            given back (Relatel refused, never arrived)
    relatel_mcp_budget_exhausted_total{budget}           refusals: an account's day's budget ran out
    relatel_mcp_budget_limit{budget}                     each account's daily limit (the policy)
    relatel_mcp_upstream_request_duration_seconds{method}  each HTTP attempt to Relatel
    relatel_mcp_upstream_responses_total{method,status_class}  2xx, 3xx, 4xx, 5xx, transport_error
    relatel_mcp_upstream_retries_total{method}           attempts repeated (idempotent requests only)
    relatel_mcp_outcome_unknown_total{tool}              sends whose answer was lost (not repeated)
    relatel_mcp_open_sessions{transport}                 streamable_http, sse (at scrape time)
    relatel_mcp_store_errors_total{backend}              statements that met StoreUnavailable
    relatel_mcp_ready, relatel_mcp_dependency_up{dependency}  the last readiness check (/readyz)
    relatel_mcp_not_ready_refusals_total{path}           requests refused with 503 while not ready
    relatel_mcp_info{version}                            1
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# The gate's outcomes: a question went to a human (asked); a human's yes, or a preview token
# brought back (approved); a no or a cancel (declined); no answer in time (timed_out); refused by
# the policy (mode, kill switch, destination, budget, a bad or changed confirmation); a preview
# token issued (preview); let through by `allow` without asking (allowed); a dry run (dry_run).
GATE_OUTCOMES = ("asked", "approved", "declined", "timed_out", "refused", "preview", "allowed", "dry_run")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "transport_error")
TRANSPORTS = ("streamable_http", "sse")
DEPENDENCIES = ("store", "relatel")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Records nothing: metrics are off."""

    on = False

    def tool_call(self, tool: str, decision: str) -> None:
        pass

    def gate(self, tool: str, outcome: str) -> None:
        pass

    def budget_spent(self, budget: str, amount: int) -> None:
        pass

    def budget_refunded(self, budget: str, amount: int) -> None:
        pass

    def budget_exhausted(self, budget: str) -> None:
        pass

    def budget_limits(self, limits: Mapping[str, int]) -> None:
        pass

    def upstream(self, method: str, status: int | None, seconds: float) -> None:
        """One HTTP attempt: its status, or None for a transport error (no answer)."""

    def upstream_retry(self, method: str) -> None:
        pass

    def outcome_unknown(self, tool: str) -> None:
        pass

    def sessions(self, transport: str, count: Callable[[], int]) -> None:
        """`count()` is asked at every scrape how many sessions of `transport` are open."""

    def store_error(self, backend: str) -> None:
        pass

    def readiness(self, store: bool, relatel: bool) -> None:
        pass

    def not_ready_refusal(self, path: str) -> None:
        pass

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format the scraper's `Accept` asks for, and its content type."""
        return b"", "text/plain; version=0.0.4; charset=utf-8"


NO_METRICS = Metrics()


class Prometheus(Metrics):
    """Records into a registry of its own (`registry`), rendered by `render`."""

    on = True

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self._calls = Counter(
            "relatel_mcp_tool_calls", "Tool calls, by the audit's decision.", ["tool", "decision"], registry=r
        )
        self._gate = Counter(
            "relatel_mcp_gate_outcomes",
            "What the gate did with costly and destructive calls.",
            ["tool", "outcome"],
            registry=r,
        )
        self._spent = Counter(
            "relatel_mcp_budget_spent",
            "Budget units spent just before sending, all accounts together.",
            ["budget"],
            registry=r,
        )
        self._refunded = Counter(
            "relatel_mcp_budget_refunded",
            "Budget units given back: Relatel refused the request, or it never arrived.",
            ["budget"],
            registry=r,
        )
        self._exhausted = Counter(
            "relatel_mcp_budget_exhausted",
            "Calls refused because an account's daily budget would be exceeded.",
            ["budget"],
            registry=r,
        )
        self._limit = Gauge(
            "relatel_mcp_budget_limit",
            "The daily budget of each account (the policy's [budgets]).",
            ["budget"],
            registry=r,
        )
        self._latency = Histogram(
            "relatel_mcp_upstream_request_duration_seconds",
            "HTTP attempts to Relatel, from sending to the whole answer.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._responses = Counter(
            "relatel_mcp_upstream_responses",
            "HTTP attempts to Relatel, by status class (transport_error: no answer).",
            ["method", "status_class"],
            registry=r,
        )
        self._retries = Counter(
            "relatel_mcp_upstream_retries",
            "Attempts repeated (idempotent requests only).",
            ["method"],
            registry=r,
        )
        self._unknown = Counter(
            "relatel_mcp_outcome_unknown",
            "Sends whose answer was lost: not repeated, the agent told to check.",
            ["tool"],
            registry=r,
        )
        self._store = Counter(
            "relatel_mcp_store_errors",
            "Store statements that failed: the database could not be reached.",
            ["backend"],
            registry=r,
        )
        self._ready = Gauge(
            "relatel_mcp_ready", "1 when the last readiness check passed (/readyz).", registry=r
        )
        self._up = Gauge(
            "relatel_mcp_dependency_up",
            "1 when the dependency answered the last readiness check.",
            ["dependency"],
            registry=r,
        )
        self._refusals = Counter(
            "relatel_mcp_not_ready_refusals",
            "Requests refused with 503 while this replica was not ready (a proxy passes them on).",
            ["path"],
            registry=r,
        )
        Gauge("relatel_mcp_info", "This server.", ["version"], registry=r).labels(__version__).set(1)
        self._sessions: dict[str, Callable[[], int]] = {}
        r.register(_Sessions(self._sessions))

    def tool_call(self, tool: str, decision: str) -> None:
        self._calls.labels(tool, decision).inc()

    def gate(self, tool: str, outcome: str) -> None:
        self._gate.labels(tool, outcome).inc()

    def budget_spent(self, budget: str, amount: int) -> None:
        self._spent.labels(budget).inc(amount)

    def budget_refunded(self, budget: str, amount: int) -> None:
        self._refunded.labels(budget).inc(amount)

    def budget_exhausted(self, budget: str) -> None:
        self._exhausted.labels(budget).inc()

    def budget_limits(self, limits: Mapping[str, int]) -> None:
        for budget, limit in limits.items():
            self._limit.labels(budget).set(limit)

    def upstream(self, method: str, status: int | None, seconds: float) -> None:
        self._latency.labels(method).observe(seconds)
        self._responses.labels(method, status_class(status)).inc()

    def upstream_retry(self, method: str) -> None:
        self._retries.labels(method).inc()

    def outcome_unknown(self, tool: str) -> None:
        self._unknown.labels(tool).inc()

    def sessions(self, transport: str, count: Callable[[], int]) -> None:
        self._sessions[transport] = count

    def store_error(self, backend: str) -> None:
        self._store.labels(backend).inc()

    def readiness(self, store: bool, relatel: bool) -> None:
        self._ready.set(store and relatel)
        self._up.labels("store").set(store)
        self._up.labels("relatel").set(relatel)

    def not_ready_refusal(self, path: str) -> None:
        self._refusals.labels(path).inc()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(accept)  # Prometheus's text format unless asked otherwise
        return encode(self.registry), content_type


def status_class(status: int | None) -> str:
    return "transport_error" if status is None else f"{status // 100}xx"


class _Sessions:
    """relatel_mcp_open_sessions, counted when scraped: each transport's own record of what is
    open, so that no session closed by any path (a DELETE, a drop, idle reaping) is missed."""

    def __init__(self, counts: dict[str, Callable[[], int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "relatel_mcp_open_sessions", "Open MCP sessions, by transport.", labels=["transport"]
        )
        for transport in TRANSPORTS:
            count = self.counts.get(transport)
            family.add_metric([transport], count() if count is not None else 0)
        yield family
