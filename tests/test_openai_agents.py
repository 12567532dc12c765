"""The OpenAI Agents SDK: an `Agent` run by its `Runner`, with a scripted model (the SDK's own model
interface, emitting tool calls), using `toolkit.openai_agents_tools()` against the sandbox.

The SDK's approval is the human rung: the run stops once for the call, with the gate's question;
only an approved call is sent, once, and only for the facts that were shown.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from agents import Agent, FunctionTool, ModelResponse, RunConfig, RunContextWrapper, Runner, Usage
from agents.models.interface import Model
from agents.tool_context import ToolContext
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from relatel_mcp import Toolkit
from relatel_mcp.core import catalog

from .support import ALLOW, EXE, Human, decisions, env, sent, toolkit_for

pytestmark = pytest.mark.anyio

DIAL = ("POST", "/api/v2/switch/dial")
GATED = {op.name for op in catalog.load() if op.gated}
NO_TRACES = RunConfig(tracing_disabled=True)  # nothing leaves the machine
Turn = Callable[[list[Any]], list[Any]]  # what the model says, given what it was sent


class ScriptedModel(Model):
    """The SDK's model interface, answering from a script instead of a network."""

    def __init__(self, *turns: Turn) -> None:
        self.turns = list(turns)
        self.inputs: list[list[Any]] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = [input] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        return ModelResponse(output=self.turns.pop(0)(items), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def call(name: str, arguments: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        type="function_call", id=f"fc_{call_id}", call_id=call_id, name=name, arguments=json.dumps(arguments)
    )


def dial(number: str, call_id: str = "dial") -> ResponseFunctionToolCall:
    """initiate_call as a strict model sends it: every argument, the optional ones null."""
    return call(
        "initiate_call", {"to_number": number, "restrict_to": None, "cloak_reception_id": None}, call_id
    )


def say(text: str) -> ResponseOutputMessage:
    content = [ResponseOutputText(type="output_text", text=text, annotations=[])]
    return ResponseOutputMessage(
        type="message", id="msg", role="assistant", status="completed", content=content
    )


def outputs(items: list[Any]) -> dict[str, Any]:
    """The tool outputs the model was sent, by call id."""
    return {
        item["call_id"]: item["output"]
        for item in items
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }


def look_up_then_call(*more: Turn) -> ScriptedModel:
    """Look up Peter's number, call the number the lookup returned, then say what happened."""

    def dial_the_number_found(items: list[Any]) -> list[Any]:
        return [dial(json.loads(outputs(items)["lookup"])["contact"]["number"])]

    return ScriptedModel(
        lambda items: [call("find_contact_by_number", {"number": "+45 28 11 44 77"}, "lookup")],
        dial_the_number_found,
        *more,
        lambda items: [say(outputs(items)["dial"])],
    )


def agent(toolkit: Toolkit, model: ScriptedModel) -> Agent[Any]:
    return Agent(
        name="phone assistant", instructions="Help.", model=model, tools=toolkit.openai_agents_tools()
    )


async def test_an_agent_looks_up_a_contact_and_places_the_call_after_one_approval(sandbox):
    toolkit = toolkit_for(sandbox.url)  # no approve: the SDK's approval is the human rung
    model = look_up_then_call()
    assistant = agent(toolkit, model)
    result = await Runner.run(assistant, "Call Peter from Vestkyst VVS", run_config=NO_TRACES)
    (item,) = result.interruptions  # the lookup ran; the call waits for its human
    confirmation = toolkit.confirmation_for(item.call_id)
    assert item.name == "initiate_call" and confirmation is not None
    assert "Place a real phone call to +45 28 11 44 77?" in confirmation.question
    assert "«Peter Vestergaard (Vestkyst VVS)»" in confirmation.question
    assert sent(sandbox) == [] and sandbox.outbox() == []

    state = result.to_state()
    state.approve(item)
    result = await Runner.run(assistant, state, run_config=NO_TRACES)
    assert result.interruptions == []
    assert json.loads(result.final_output) == {"message": "Call initiated successfully"}
    assert sent(sandbox) == [DIAL]
    assert [(m["kind"], m["to_number"]) for m in sandbox.outbox()] == [("call", "4528114477")]
    assert await decisions(toolkit) == [("asked", "elicitation"), ("sent", "elicitation")]


async def test_declined_in_the_sdk_nothing_is_sent(sandbox):
    toolkit = toolkit_for(sandbox.url)
    model = ScriptedModel(
        lambda items: [dial("+45 28 11 44 77")],
        lambda items: [say(outputs(items)["dial"])],
    )
    assistant = agent(toolkit, model)
    result = await Runner.run(assistant, "Call Peter", run_config=NO_TRACES)
    (item,) = result.interruptions
    state = result.to_state()
    state.reject(item)
    result = await Runner.run(assistant, state, run_config=NO_TRACES)
    assert result.final_output == "Tool execution was not approved."  # the SDK's word to the model
    assert sent(sandbox) == [] and sandbox.outbox() == []
    assert await decisions(toolkit) == [("asked", "elicitation")]  # the question; no call ever followed


async def test_approving_a_tool_for_every_call_still_sends_only_the_call_that_was_asked(sandbox):
    """An `always_approve` is the app's blanket yes; the gate counts a yes per question, so the
    second call, never put to the human, sends nothing."""
    toolkit = toolkit_for(sandbox.url)

    model = look_up_then_call(lambda items: [dial("+45 20 44 55 66", "again")])
    assistant = agent(toolkit, model)
    result = await Runner.run(assistant, "Call Peter, then Jonas", run_config=NO_TRACES)
    state = result.to_state()
    state.approve(result.interruptions[0], always_approve=True)
    result = await Runner.run(assistant, state, run_config=NO_TRACES)
    second = json.loads(outputs(model.inputs[-1])["again"])
    assert (
        second["error"]["code"] == "declined"
        and "without a question of its own" in second["error"]["message"]
    )
    assert [m["to_number"] for m in sandbox.outbox()] == ["4528114477"]


async def test_a_group_changed_between_question_and_approval_sends_nothing(sandbox):
    toolkit = toolkit_for(sandbox.url)
    model = ScriptedModel(
        lambda items: [
            call("send_employee_group_sms", {"employee_group_id": 1, "body": "Møde kl. 14"}, "sms")
        ],
        lambda items: [say(outputs(items)["sms"])],
    )
    assistant = agent(toolkit, model)
    result = await Runner.run(assistant, "Tell the group about the meeting", run_config=NO_TRACES)
    (item,) = result.interruptions
    assert "(3 people)" in toolkit.confirmation_for(item.call_id).question
    eve = sandbox.api().post("/api/v2/employees", json={"employee": {"name": "Eve", "number": "4590909090"}})
    changed = await toolkit_for(sandbox.url, policy=ALLOW).call(
        "update_employee_group", {"id": 1, "employee_ids": [1, 2, 3, eve.json()["employee"]["id"]]}
    )
    assert not changed.get("is_error")
    state = result.to_state()
    state.approve(item)
    result = await Runner.run(assistant, state, run_config=NO_TRACES)
    error = json.loads(result.final_output)["error"]
    assert error["code"] == "refused" and "«Eve»" in error["message"]
    assert sandbox.outbox() == []


async def test_a_call_no_yes_could_allow_is_refused_without_asking(sandbox):
    toolkit = toolkit_for(sandbox.url)
    model = ScriptedModel(
        lambda items: [dial("+46 8 123 456 78")],
        lambda items: [say(outputs(items)["dial"])],
    )
    result = await Runner.run(agent(toolkit, model), "Call Stockholm", run_config=NO_TRACES)
    assert result.interruptions == []
    assert json.loads(result.final_output)["error"]["code"] == "refused"
    assert sent(sandbox) == []


async def test_the_tool_run_without_the_sdks_approval_or_for_other_arguments_sends_nothing(sandbox):
    """Called directly (as a buggy or hostile loop might), not through an approved run."""
    tool = next(t for t in toolkit_for(sandbox.url).openai_agents_tools() if t.name == "initiate_call")
    asked = dial("+45 28 11 44 77", "c1").arguments
    other = dial("+45 20 44 55 66", "c2").arguments
    assert await tool.needs_approval(RunContextWrapper(context=None), json.loads(asked), "c1") is True
    assert await tool.needs_approval(RunContextWrapper(context=None), json.loads(asked), "c2") is True

    def run(call_id: str, arguments: str) -> Any:
        context = ToolContext(
            context=None, tool_name="initiate_call", tool_call_id=call_id, tool_arguments=arguments
        )
        return tool.on_invoke_tool(context, arguments)

    unapproved = json.loads(await run("c1", asked))
    swapped = json.loads(await run("c2", other))
    assert unapproved["error"]["code"] == "declined" and "did not confirm" in unapproved["error"]["message"]
    assert swapped["error"]["code"] == "declined" and "other arguments" in swapped["error"]["message"]
    assert sent(sandbox) == [] and sandbox.outbox() == []


def test_function_tools_keep_the_exported_strict_schema_and_ask_for_gated_tools_only(sandbox):
    toolkit = toolkit_for(sandbox.url, Human())
    tools = toolkit.openai_agents_tools()
    exported = {t["function"]["name"]: t["function"] for t in toolkit.openai_tools()}
    assert [t.name for t in tools] == list(exported)
    for tool in tools:
        assert isinstance(tool, FunctionTool) and tool.strict_json_schema
        assert tool.params_json_schema == exported[tool.name]["parameters"]  # the SDK's check changed nothing
        assert callable(tool.needs_approval) is (tool.name in GATED), tool.name


# ------------------------------------------------------------------ its MCP client


async def test_its_mcp_client_gives_the_model_the_recordings_link_not_the_recording(sandbox, tmp_path):
    """The Agents SDK's own MCP client (MCPServerStdio) turns a content block it has no type for
    into text holding the block's JSON: a resource_link is a few hundred bytes naming the URI
    (audio content was the whole base64); the link followed through it gives the recording."""
    from agents.mcp import MCPServerStdio, MCPUtil

    params = {"command": EXE, "args": ["serve"], "env": env(
        RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL=sandbox.url, RELATEL_MCP_STATE_DIR=str(tmp_path))}  # fmt: skip
    async with MCPServerStdio(params=params, client_session_timeout_seconds=30) as server:
        tool = next(t for t in await server.list_tools() if t.name == "download_voicemail")
        output = await MCPUtil.invoke_mcp_tool(server, tool, RunContextWrapper(context=None), '{"id": 1}')
        [link] = [json.loads(item["text"]) for item in output if '"resource_link"' in item["text"][:400]]
        [contents] = (await server.read_resource(link["uri"])).contents
    recording = sandbox.api().get("/api/v2/voice_mails/1/sound").content
    assert link["uri"] == "relatel://voicemails/1/recording" and link["size"] == len(recording)
    assert len(json.dumps(output)) < 3_000
    assert base64.b64decode(contents.blob) == recording
