"""LangChain, both ways in: `toolkit.langchain_tools()` (StructuredTools calling the Toolkit, whose
`approve` is the human rung), and langchain-mcp-adapters loading the MCP server's tools over stdio
(the MCP path, for frameworks that prefer it) from an environment of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool

from relatel_mcp.core import catalog

from .hygiene import HYGIENE, HYGIENE_TOKEN, STATE_DIRS
from .services import missing
from .support import Human, sent, toolkit_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("relatel-mcp"))
LANGCHAIN_MCP = ROOT / ".venv-langchain-mcp" / "bin" / "python"  # made by scripts/test
GATED = {op.name for op in catalog.load() if op.gated}


async def test_structured_tools_call_the_toolkit(sandbox):
    tools = {tool.name: tool for tool in toolkit_for(sandbox.url).langchain_tools()}
    assert all(isinstance(tool, StructuredTool) for tool in tools.values())
    assert set(tools) == {op.name for op in catalog.load()} - GATED  # no approve: no gated tools
    found = json.loads(await tools["find_contact_by_number"].ainvoke({"number": "+45 28 11 44 77"}))
    assert found["contact"]["name"] == "Peter Vestergaard (Vestkyst VVS)"
    message = await tools["get_contact"].ainvoke(
        {"name": "get_contact", "args": {"id": 99}, "id": "c1", "type": "tool_call"}
    )
    assert isinstance(message, ToolMessage) and message.tool_call_id == "c1"
    assert json.loads(message.content)["error"]["code"] == "not_found"


async def test_a_gated_structured_tool_asks_the_toolkits_human_once(sandbox):
    human = Human(True)
    tools = {tool.name: tool for tool in toolkit_for(sandbox.url, human).langchain_tools()}
    result = json.loads(await tools["initiate_call"].ainvoke({"to_number": "+45 28 11 44 77"}))
    assert result == {"message": "Call initiated successfully"}
    assert [c.tool for c in human.asked] == ["initiate_call"]
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


def test_a_structured_tool_runs_without_an_event_loop(sandbox):
    human = Human(False)
    tools = {tool.name: tool for tool in toolkit_for(sandbox.url, human).langchain_tools()}
    declined = json.loads(tools["send_employee_sms"].invoke({"id": 2, "body": "hej"}))
    assert declined["error"]["code"] == "declined" and len(human.asked) == 1
    assert sent(sandbox) == []


def test_langchain_mcp_adapters_load_the_servers_tools_over_stdio_and_call_them(sandbox, tmp_path):
    if not LANGCHAIN_MCP.exists():
        missing(
            "langchain-mcp-adapters in .venv-langchain-mcp (mcp<2)", "is not there: scripts/test makes it"
        )
    state = tmp_path / "state"
    STATE_DIRS.append(state)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "RELATEL_TOKEN": HYGIENE_TOKEN,
        "RELATEL_BASE_URL": sandbox.url,
        "RELATEL_MCP_STATE_DIR": str(state),
    }
    done = subprocess.run(
        [str(LANGCHAIN_MCP), str(ROOT / "tests" / "clients" / "langchain_mcp.py"), EXE, json.dumps(env)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    output = json.loads(done.stdout)
    # langchain-mcp-adapters declares no elicitation: the gated tools are not offered to it.
    assert set(output["tools"]) == {op.name for op in catalog.load()} - GATED
    assert set(output["tools"].values()) == {"object"}
    assert "Peter Vestergaard (Vestkyst VVS)" in json.dumps(output["found"], ensure_ascii=False)
    # The tool's own request, once; the rest are reads of what the account can use, made at start-up
    # and in any order with the call (under load one can arrive after it).
    requests = [(r["method"], r["path"]) for r in sandbox.requests()]
    assert [r for r in requests if r[1].startswith("/api/v2/contacts")] == [
        ("GET", "/api/v2/contacts/by_number/4528114477")
    ]
    assert {method for method, _ in requests} == {"GET"}
    assert HYGIENE_TOKEN not in done.stdout + done.stderr
    HYGIENE.scan_stderr("langchain-mcp-adapters and its relatel-mcp", done.stderr)  # the server's is its
    # download_voicemail: the adapter turns the resource_link into a LangChain file block (uri and
    # MIME type only: name, title, description and size are dropped) beside the text block, the
    # structured content becomes the artifact, and its own resources/read of the link gives the
    # bytes the sandbox serves.
    voicemail = output["voicemail"]
    uri = "relatel://voicemails/1/recording"
    assert voicemail["message"] == "ToolMessage"
    assert [block["type"] for block in voicemail["content"]] == ["text", "file"]
    file = voicemail["content"][1]
    assert {k: v for k, v in file.items() if k != "id"} == {
        "type": "file",
        "url": uri,
        "mime_type": "audio/mpeg",
    }
    sound = sandbox.api().get("/api/v2/voice_mails/1/sound").content
    recording = voicemail["artifact"]["structured_content"]["voicemail"]["recording"]
    assert recording == {"uri": uri, "mime_type": "audio/mpeg", "size_bytes": len(sound)}
    assert voicemail["read"] == [
        {
            "mime_type": "audio/mpeg",
            "metadata": {"uri": uri},
            "bytes": len(sound),
            "sha256": hashlib.sha256(sound).hexdigest(),
        }
    ]
    # MCP audio content is what the adapter cannot convert: with `inline: true` (and with every call
    # before the recording became a link) the tool raises out of the agent's run.
    assert voicemail["inline"] == {
        "raised": "NotImplementedError",
        "message": "AudioContent conversion to LangChain content blocks is not yet supported. "
        "Received audio with mime type: audio/mpeg",
    }
