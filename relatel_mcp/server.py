"""The MCP server: tools/list from the catalogue, tools/call into the pipeline.

It uses the SDK's low-level `Server`, because every tool here is data (a catalogue entry with a
pydantic model), not a Python function with a signature for MCPServer to introspect.
"""

from __future__ import annotations

import difflib

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from . import __version__, catalog
from .catalog import Operation
from .client import RelatelClient
from .config import Settings
from .pipeline import Pipeline, Tenant

INSTRUCTIONS = (
    "Tools for one company's Relatel phone system. Give phone numbers as people write them "
    "(+45 71 99 99 99); results show them as 4571999999. Lists come newest first; pass a "
    "result's next_page arguments back to get more. Calls, SMS, orders and deletes need a "
    "human's confirmation."
)


def visible_operations(settings: Settings) -> tuple[Operation, ...]:
    operations = catalog.load()
    if settings.toolsets is not None:
        known = {op.toolset for op in operations}
        if unknown := settings.toolsets - known:
            raise ValueError(f"unknown toolsets {sorted(unknown)}; choose from {sorted(known)}")
        operations = tuple(op for op in operations if op.toolset in settings.toolsets)
    return operations


def build_server(settings: Settings, client: RelatelClient) -> Server:
    operations = {op.name: op for op in visible_operations(settings)}
    tools = [op.tool() for op in operations.values()]
    pipeline = Pipeline(settings, client)
    tenant = Tenant(settings.require_token())

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        op = operations.get(params.name)
        if op is None:
            raise MCPError(code=types.INVALID_PARAMS, message=_unknown_tool(params.name, operations))
        return await pipeline.call(op, params.arguments, tenant)

    return Server(
        "relatel-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _unknown_tool(name: str, operations: dict[str, Operation]) -> str:
    close = difflib.get_close_matches(name, operations, n=3)
    suggestion = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown tool {name[:80]!r}.{suggestion} tools/list shows the tools this server offers."
