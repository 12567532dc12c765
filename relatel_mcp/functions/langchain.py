"""LangChain tools: a StructuredTool per tool, calling the toolkit (`pip install
'relatel-mcp[langchain]'`). The toolkit's `approve` is the human rung, as for every other way in."""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types

from ..core.catalog import Operation
from . import definitions
from .confirmation import TwoRounds

try:
    from langchain_core.tools import StructuredTool
except ImportError as exc:
    raise ImportError(
        "toolkit.langchain_tools() needs LangChain: pip install 'relatel-mcp[langchain]'"
    ) from exc


def structured_tools(toolkit: TwoRounds) -> list[StructuredTool]:
    return [_structured_tool(toolkit, op, tool) for op, tool in toolkit.tools()]


def _structured_tool(toolkit: TwoRounds, op: Operation, tool: types.Tool) -> StructuredTool:
    async def run(**arguments: Any) -> str:
        return json.dumps(await toolkit.call(op.name, arguments), ensure_ascii=False)

    def run_sync(**arguments: Any) -> str:
        return json.dumps(toolkit.call_sync(op.name, arguments), ensure_ascii=False)

    return StructuredTool(
        name=op.name,
        description=tool.description or "",
        args_schema=definitions.loose_schema(op, tool),
        coroutine=run,
        func=run_sync,
    )
