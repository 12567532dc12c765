"""The floor: the least an MCP server on the same SDK can be. A bare low-level `Server` over stdio
answering one tool, get_current_employee, with one GET (httpx2, the SDK's own HTTP client) to
RELATEL_BASE_URL with RELATEL_TOKEN. No catalogue, validation, gate, audit or shaping: what
relatel-mcp costs beyond this is what it adds. Run by benchmarks/against_floor.py.
"""

from __future__ import annotations

import os

import anyio
import httpx2
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOL = types.Tool(
    name="get_current_employee",
    description="Get yourself.",
    input_schema={"type": "object", "properties": {}},
)


async def serve() -> None:
    headers = {"Authorization": f"Bearer {os.environ['RELATEL_TOKEN']}", "Accept": "application/json"}
    async with httpx2.AsyncClient(base_url=os.environ["RELATEL_BASE_URL"], headers=headers) as http:

        async def list_tools(
            ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=[TOOL])

        async def call_tool(
            ctx: ServerRequestContext, params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            response = await http.get("/api/v2/employee")
            return types.CallToolResult(content=[types.TextContent(text=response.text)])

        server = Server("floor", on_list_tools=list_tools, on_call_tool=call_tool)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(serve)
