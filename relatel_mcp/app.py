"""The application, assembled once from one `Settings`: the catalogue's tools as the policy shapes
them, the state store, the one upstream client, the gate, the account caches and the pipeline.
stdio, streamable HTTP and SSE (server.py, transports.py) and the Toolkit (toolkit.py) all serve
the same `App`; none of them builds a part of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, fields

import mcp.types as types

from .core import catalog
from .core.catalog import Operation
from .core.errors import ConfigError, unauthorized
from .core.metrics import NO_METRICS, Metrics, Prometheus
from .pipeline import Pipeline
from .policy import Gate, Policy, open_gate
from .policy.rules import Budgets
from .resources import Resources
from .settings import Settings
from .store import open_store
from .upstream.access import NOTHING, Access, Lacking
from .upstream.accounts import Accounts, Unavailable
from .upstream.client import RelatelClient, RetryPolicy, Tenant
from .upstream.directory import Directory
from .upstream.ratelimit import RateLimiter
from .web.approval_pages import LoopbackPages, loopback_pages

Described = list[tuple[Operation, types.Tool]]


@dataclass(frozen=True)
class App:
    """What one server process shares between all its calls and tenants."""

    settings: Settings
    tools: Described  # every tool of the chosen toolsets, as the policy shapes it
    client: RelatelClient
    gate: Gate
    accounts: Accounts
    access: Access  # what each account can use
    loopback: LoopbackPages  # approval pages where there is no HTTP server of our own (stdio)
    pipeline: Pipeline
    resources: Resources  # recordings, contacts, employees and the audit, read on demand
    directory: Directory  # each account's names, for completion (briefly kept)
    secrets: tuple[str, ...]  # the server's credentials, kept out of results and the audit
    metrics: Metrics = NO_METRICS  # this App's own registry where /metrics is served (HTTP, a token)

    async def read_account(self) -> str | None:
        """Find out at start-up what the configured token's account can use (stdio, and HTTP with
        the server's own token: one account). What stops every call from working, as one line
        for stderr: Relatel refused the token, or cannot be reached."""
        if self.settings.all_tools or not self.settings.token:
            return None
        tenant = own_tenant(self.settings)
        try:
            employee = await self.accounts.employee(tenant)
        except Unavailable as exc:
            detail = str(exc).split(";")[0].rstrip(".")  # not "nothing was sent": nothing was meant to be
            return (
                f"relatel-mcp: Relatel is unreachable at {self.settings.base_url} ({detail}); serving "
                "anyway, and tool calls fail until it answers. Check the network and "
                "RELATEL_BASE_URL (or --base-url)."
            )
        if employee is None:
            return (
                f"relatel-mcp: Relatel at {self.settings.base_url} refused the token; serving anyway, "
                f"and every tool call will say so. {unauthorized(tenant.source).hint}"
            )
        await self.access.of(tenant, requirements(op for op, _ in self.tools))
        return None


def own_tenant(settings: Settings) -> Tenant:
    """The server's own Relatel access token (RELATEL_TOKEN or the stored login), as a tenant."""
    return Tenant(settings.require_token(), source=settings.token_source)


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, api_keys: tuple[str, ...] = (), metrics_token: str | None = None
) -> AsyncIterator[App]:
    """The application for a server's (or an open Toolkit's) life; everything closed after.
    With a `metrics_token` (an HTTP server's RELATEL_MCP_METRICS_TOKEN) it keeps Prometheus
    metrics, in a registry of its own; without, it records nothing (prometheus-client is not
    even imported)."""
    tools = described_tools(settings)
    metrics = Prometheus() if metrics_token else NO_METRICS
    metrics.budget_limits({f.name: getattr(settings.policy.budgets, f.name) for f in fields(Budgets)})
    client = RelatelClient(
        settings.base_url,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retry=RetryPolicy(attempts=settings.retries + 1),
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        metrics=metrics,
    )
    secrets = tuple(s for s in (settings.token, settings.secret, *api_keys, metrics_token) if s)
    try:
        async with open_store(settings.store, settings.state_dir, metrics=metrics) as store:
            gate = open_gate(
                settings.policy,
                settings.state_dir,
                store,
                settings.secret,
                kill_switch=settings.kill_switch,
                metrics=metrics,
            )
            accounts = Accounts(client, store)
            pipeline = Pipeline(
                client,
                gate,
                accounts,
                max_result_bytes=settings.max_result_bytes,
                secrets=secrets,
                metrics=metrics,
            )
            async with loopback_pages(gate.approvals) as loopback:
                yield App(
                    settings,
                    tools,
                    client,
                    gate,
                    accounts,
                    Access(client, accounts),
                    loopback,
                    pipeline,
                    Resources(client, accounts, store, max_bytes=settings.max_result_bytes),
                    Directory(client),
                    secrets,
                    metrics,
                )
    finally:
        await client.aclose()


def visible_operations(settings: Settings) -> tuple[Operation, ...]:
    operations = catalog.load()
    if settings.toolsets is not None:
        known = {op.toolset for op in operations}
        if unknown := settings.toolsets - known:
            raise ConfigError(
                f"unknown toolsets {', '.join(sorted(unknown))} in --toolsets (or RELATEL_MCP_TOOLSETS); "
                f"choose from {', '.join(sorted(known))}"
            )
        operations = tuple(op for op in operations if op.toolset in settings.toolsets)
    return operations


def described_tools(settings: Settings) -> Described:
    """Every tool of the chosen toolsets, as the policy shapes it: a preview opt-in adds the
    `confirmation_token` argument, a dry run drops the output schema of the gated tools."""
    policy = settings.policy
    return [
        (op, op.tool(confirmation=policy.offers_preview(op.kind), output=not (policy.dry_run and op.gated)))
        for op in visible_operations(settings)
    ]


def offered(tools: Described, policy: Policy, *, human: bool, lacking: Lacking = NOTHING) -> Described:
    """The tools a client is offered: a tool that needs a human's yes only where one can be asked,
    and none that needs what the account lacks."""
    return [(op, tool) for op, tool in tools if policy.offers(op.kind, human=human) and not lacking.of(op)]


def requirements(operations: Iterable[Operation]) -> frozenset[str]:
    """What the account must be asked about before these tools are listed."""
    return frozenset(r for op in operations for r in op.requires)
