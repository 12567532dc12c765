"""The MCP server: tools/list from the catalogue, tools/call into the pipeline, the audit resource.

It uses the SDK's low-level `Server`, because every tool here is data (a catalogue entry with a
pydantic model), not a Python function with a signature for MCPServer to introspect.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import AsyncIterator, Callable

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from . import __version__, catalog
from .catalog import Operation
from .client import RelatelClient, RetryPolicy, Tenant
from .config import Settings
from .pipeline import Pipeline
from .policy import Channel, Gate, open_gate
from .ratelimit import RateLimiter

INSTRUCTIONS = (
    "Tools for one company's Relatel phone system. Give phone numbers as people write them "
    "(+45 71 99 99 99); results show them as 4571999999. Lists come newest first; pass a "
    "result's next_page arguments back to get more. Calls, SMS, orders and deletes need a "
    "human's confirmation, which the server asks for itself."
)
AUDIT_URI = "relatel://audit"

TenantOf = Callable[[ServerRequestContext], Tenant]


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[tuple[RelatelClient, Gate]]:
    """The one upstream client and the gate with its state, for the life of a server."""
    client = RelatelClient(
        settings.base_url,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retry=RetryPolicy(attempts=settings.retries + 1),
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
    )
    gate = open_gate(settings.policy, settings.state_dir, settings.secret)
    try:
        yield client, gate
    finally:
        await client.aclose()
        gate.store.close()


def visible_operations(settings: Settings) -> tuple[Operation, ...]:
    operations = catalog.load()
    if settings.toolsets is not None:
        known = {op.toolset for op in operations}
        if unknown := settings.toolsets - known:
            raise ValueError(f"unknown toolsets {sorted(unknown)}; choose from {sorted(known)}")
        operations = tuple(op for op in operations if op.toolset in settings.toolsets)
    return operations


def build_server(
    settings: Settings, client: RelatelClient, gate: Gate, tenant_of: TenantOf | None = None
) -> Server:
    """`tenant_of` says whose account a request acts on; by default the configured token's."""
    if tenant_of is None:
        tenant = Tenant(settings.require_token())
        tenant_of = lambda ctx: tenant  # noqa: E731
    # Read-only mode hides writes from tools/list; a call to one still reaches the gate, which
    # refuses it with a result that says why.
    operations = {op.name: op for op in visible_operations(settings)}
    policy = gate.policy
    tools = [
        op.tool(confirmation=policy.offers_preview(op.kind), output=not (policy.dry_run and op.gated))
        for op in operations.values()
        if not gate.hides(op)
    ]
    pipeline = Pipeline(client, gate, max_result_bytes=settings.max_result_bytes)

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        op = operations.get(params.name)
        if op is None:
            raise MCPError(code=types.INVALID_PARAMS, message=_unknown_tool(params.name, operations))
        return await pipeline.call(op, params.arguments, tenant_of(ctx), channel_of(ctx, params))

    async def list_resources(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        audit = types.Resource(
            uri=AUDIT_URI,
            name="audit",
            description="The latest costly and destructive attempts on this account and what became of them.",
            mime_type="application/json",
        )
        return types.ListResourcesResult(resources=[audit])

    async def read_resource(
        ctx: ServerRequestContext, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        if str(params.uri) != AUDIT_URI:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource {str(params.uri)[:100]!r}")
        records = gate.store.recent(50, tenant=tenant_of(ctx).id)
        text = json.dumps({"audit": records}, ensure_ascii=False)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=AUDIT_URI, text=text, mime_type="application/json")]
        )

    return Server(
        "relatel-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def channel_of(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> Channel:
    """How this request can reach a human: both protocol eras, and only form elicitation."""
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    form = elicitation is not None and (elicitation.form is not None or elicitation.url is None)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return Channel(
            modern=True,
            can_elicit=form,
            input_responses=params.input_responses,
            request_state=params.request_state,
        )

    async def elicit(message: str, schema: dict) -> types.ElicitResult:
        return await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)

    return Channel(modern=False, can_elicit=form and ctx.session.can_send_request, elicit=elicit)


def _unknown_tool(name: str, operations: dict[str, Operation]) -> str:
    close = difflib.get_close_matches(name, operations, n=3)
    suggestion = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown tool {name[:80]!r}.{suggestion} tools/list shows the tools this server offers."
