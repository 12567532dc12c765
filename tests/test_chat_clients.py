"""The official `openai` and `anthropic` clients, pointed at local stubs of Chat Completions and the
Messages API that answer with scripted tool calls, drive the chat loops of examples/ against the
sandbox: the tools go to the provider, each tool call runs through the Toolkit, its result goes
back, and the terminal approval ("Send this SMS? [y/N]") decides whether anything is sent.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from relatel_mcp import Toolkit

from .hygiene import HYGIENE_TOKEN, STATE_DIRS
from .support import TOOL_COUNT, sent, toolkit_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
Reply = Callable[[dict[str, Any]], dict[str, Any]]  # the next answer, given the request's body
SMS = ("POST", "/api/v2/employees/2/message")


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def provider(*replies: Reply) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A provider's API on loopback: each POST gets the next scripted reply; the bodies are kept."""
    script, received = list(replies), []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, **body})
            answer = json.dumps(script.pop(0)(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
    assert script == [], "the model's script was not played to the end"


@pytest.fixture()
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """The user at the terminal: answers every input() prompt with `answer`, keeps the prompts."""

    def answering(answer: str) -> list[str]:
        prompts: list[str] = []

        def fake_input(prompt: str = "") -> str:
            prompts.append(prompt)
            return answer

        monkeypatch.setattr(builtins, "input", fake_input)
        return prompts

    return answering


# ------------------------------------------------------------------ OpenAI Chat Completions


def completion(message: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}],
    }  # fmt: skip


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def tool_messages(body: dict[str, Any]) -> dict[str, Any]:
    return {m["tool_call_id"]: json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"}


def text_jonas(body: dict[str, Any]) -> dict[str, Any]:
    """The model read the employee list it was sent and texts Jonas, by the id it found there."""
    employees = tool_messages(body)["list"]["employees"]
    jonas = next(e for e in employees if e["name"] == "Jonas Nielsen")
    return completion(
        {
            "content": None,
            "tool_calls": [
                tool_call(
                    "sms", "send_employee_sms", {"id": jonas["id"], "body": "Mødet er flyttet til kl. 14"}
                )
            ],
        }
    )


def report(call_id: str) -> Reply:
    return lambda body: completion({"content": json.dumps(tool_messages(body)[call_id])})


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_openai_chat_completions_loop_texts_jonas_after_the_terminal_yes(sandbox, terminal, answer):
    chat = example("openai_chat")
    prompts = terminal(answer)
    toolkit = toolkit_for(sandbox.url, chat.approve)
    with provider(
        lambda body: completion({"content": None, "tool_calls": [tool_call("list", "list_employees", {})]}),
        text_jonas,
        report("sms"),
    ) as (url, requests):
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="stub", max_retries=0)
        messages = [{"role": "user", "content": "Tell Jonas the meeting moved to 14"}]
        said = json.loads(await chat.chat(client, toolkit, messages))
    assert all(r["path"] == "/v1/chat/completions" for r in requests)
    assert requests[0]["tools"] == toolkit.openai_tools() and len(requests) == 3
    assert prompts == ["Send this SMS? [y/N] "]  # asked once, in the terminal
    if answer == "y":
        assert said == {"sent": 1} and sent(sandbox) == [SMS]
        (sms,) = sandbox.outbox()
        assert [r["number"] for r in sms["recipients"]] == ["4520445566"]
        assert (sms["kind"], sms["body"]) == ("sms", "Mødet er flyttet til kl. 14")
    else:
        assert said["is_error"] is True and said["error"]["code"] == "declined"
        assert sent(sandbox) == [] and sandbox.outbox() == []


# ------------------------------------------------------------------ Anthropic Messages


def message(*content: dict[str, Any]) -> dict[str, Any]:
    stop = "tool_use" if any(block["type"] == "tool_use" for block in content) else "end_turn"
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "stub", "content": list(content),
        "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
    }  # fmt: skip


def tool_results(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    last = body["messages"][-1]
    return {block["tool_use_id"]: block for block in last["content"] if block["type"] == "tool_result"}


def call_the_number_found(body: dict[str, Any]) -> dict[str, Any]:
    found = json.loads(tool_results(body)["find"]["content"])
    dial = {
        "type": "tool_use",
        "id": "dial",
        "name": "initiate_call",
        "input": {"to_number": found["contact"]["number"]},
    }
    return message({"type": "text", "text": "Calling Peter."}, dial)


@pytest.mark.parametrize("answer", ["y", ""])
async def test_anthropic_messages_loop_calls_peter_after_the_terminal_yes(sandbox, terminal, answer):
    chat = example("anthropic_chat")
    prompts = terminal(answer)
    toolkit = toolkit_for(sandbox.url, chat.approve)
    results: list[dict[str, Any]] = []

    def done(body: dict[str, Any]) -> dict[str, Any]:
        results.append(tool_results(body)["dial"])
        return message({"type": "text", "text": "Done."})

    with provider(
        lambda body: message(
            {
                "type": "tool_use",
                "id": "find",
                "name": "find_contact_by_number",
                "input": {"number": "+45 28 11 44 77"},
            }
        ),
        call_the_number_found,
        done,
    ) as (url, requests):
        client = AsyncAnthropic(base_url=url, api_key="stub", max_retries=0)
        said = await chat.chat(client, toolkit, [{"role": "user", "content": "Call Peter from Vestkyst VVS"}])
    assert said == "Done." and all(r["path"] == "/v1/messages" for r in requests)
    assert requests[0]["tools"] == toolkit.anthropic_tools()
    assert requests[2]["messages"][3]["content"][1]["name"] == "initiate_call"  # the turn went back as sent
    assert prompts == ["Go ahead? [y/N] "]
    (result,) = results
    if answer == "y":
        assert json.loads(result["content"]) == {"message": "Call initiated successfully"}
        assert result["is_error"] is False
        assert [m["to_number"] for m in sandbox.outbox()] == ["4528114477"]
    else:
        assert result["is_error"] is True and json.loads(result["content"])["error"]["code"] == "declined"
        assert sent(sandbox) == [] and sandbox.outbox() == []


# ------------------------------------------------------------------ the examples as shipped


def test_the_examples_import_and_their_tool_lists_build(sandbox, monkeypatch, tmp_path):
    STATE_DIRS.append(tmp_path)
    for name, value in {"RELATEL_TOKEN": HYGIENE_TOKEN, "RELATEL_MCP_STATE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    for name, listed in (("openai_chat", Toolkit.openai_tools), ("anthropic_chat", Toolkit.anthropic_tools)):
        module = example(name)
        toolkit = Toolkit.from_env(approve=module.approve)
        assert len(listed(toolkit)) == TOOL_COUNT and callable(module.main)
