"""OpenAI Agents SDK tools, with the SDK's approval as the human rung (`pip install
'relatel-mcp[openai-agents]'`).

A costly or destructive call goes through the SDK's own human-in-the-loop: before running it, the
SDK asks the tool's `needs_approval`, which runs the gate's first round (facts resolved, what no
yes could allow refused, nothing sent) and keeps the question under the call's id. The run stops
with the call in `result.interruptions`; the app shows `toolkit.confirmation_for(item.call_id)`
to the human and records `state.approve(item)` or `state.reject(item)`, then runs again. Only an
approved call reaches `on_invoke_tool`, which runs the second round: the facts once more, sent
only if unchanged. A call that reaches the tool without a question of its own (a tool approved
"always", a run resumed in another process) sends nothing: each costly call is approved alone.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types

from ..core.catalog import Operation
from ..core.errors import ToolError
from ..pipeline import TOKEN_ARGUMENT
from . import definitions
from .confirmation import Pending, TwoRounds

try:
    from agents import FunctionTool, RunContextWrapper
    from agents.tool_context import ToolContext
except ImportError as exc:
    raise ImportError(
        "toolkit.openai_agents_tools() needs the OpenAI Agents SDK: pip install 'relatel-mcp[openai-agents]'"
    ) from exc


def function_tools(toolkit: TwoRounds) -> list[FunctionTool]:
    return [_function_tool(toolkit, op, tool) for op, tool in toolkit.tools(human=True)]


def _function_tool(toolkit: TwoRounds, op: Operation, tool: types.Tool) -> FunctionTool:
    asks = op.gated and toolkit.settings.policy.asks(op.kind)

    async def needs_approval(ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
        # This hook only asks (round one): nothing is redeemed or sent here.
        started = await toolkit.ask(op.name, {k: v for k, v in params.items() if k != TOKEN_ARGUMENT})
        toolkit.remember(call_id, started)
        return isinstance(started, Pending)  # else round one's answer (an error) waits for the tool

    async def invoke(ctx: ToolContext[Any], text: str) -> str:
        return json.dumps(await _invoke(toolkit, op, ctx, text, asks=asks), ensure_ascii=False)

    return FunctionTool(
        name=op.name,
        description=tool.description or "",
        params_json_schema=definitions.strict_schema(op, tool),
        on_invoke_tool=invoke,
        strict_json_schema=True,
        needs_approval=needs_approval if asks else False,
    )


async def _invoke(
    toolkit: TwoRounds, op: Operation, ctx: ToolContext[Any], text: str, *, asks: bool
) -> dict[str, Any]:
    if not asks:
        return await toolkit.call(op.name, text)
    waited = toolkit.recall(ctx.tool_call_id)
    if isinstance(waited, dict):  # round one's answer (invalid, refused): nothing was asked
        return waited
    try:
        given = definitions.arguments(op, text)
    except ToolError as error:
        return toolkit.error(error)
    given.pop(TOKEN_ARGUMENT, None)
    if waited is None or waited.arguments != given:
        return toolkit.error(
            ToolError(
                "declined",
                f"{op.name} reached the tool without a question of its own to the user (approved for "
                "every call, in another run, or for other arguments); nothing was sent.",
                hint="Each costly or destructive call is approved on its own, after its question is shown.",
            )
        )
    return await toolkit.answer(waited, ctx.is_tool_approved(op.name, ctx.tool_call_id) is True)
