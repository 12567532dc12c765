"""Tool snapshots: tests/toolsnaps/<tool>.json holds each tool's definition exactly as an MCP client
receives it (name, description, input and output schema, annotations), and
tests/toolsnaps/prompts/<prompt>.json each prompt's (name, title, description, arguments). Any
change to what a model or a user sees fails here until the snapshots are regenerated on purpose,
so it shows in review:

    .venv/bin/python scripts/regenerate.py    (this file, run with UPDATE_TOOLSNAPS=1, among the rest)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from relatel_mcp.core import prompts

from .support import TOOL_COUNT, answering, connect

pytestmark = pytest.mark.anyio

SNAPS = Path(__file__).with_name("toolsnaps")
PROMPT_SNAPS = SNAPS / "prompts"
UPDATE = os.environ.get("UPDATE_TOOLSNAPS") == "1"


def snap(definition: dict) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


async def test_every_tool_matches_its_snapshot():
    # Every tool listed: a client that can ask its user, the default policy, no account to filter by.
    async with connect("http://127.0.0.1:9", all_tools=True, elicitation_callback=answering("decline")) as s:
        tools = (await s.list_tools()).tools
    received = {t.name: snap(t.model_dump(mode="json", by_alias=True, exclude_none=True)) for t in tools}
    assert len(received) == TOOL_COUNT
    compare(SNAPS, received, "a tool definition")


async def test_every_prompt_matches_its_snapshot():
    # Every prompt listed: every tool is (see above), so every prompt is.
    async with connect("http://127.0.0.1:9", all_tools=True, elicitation_callback=answering("decline")) as s:
        listed = (await s.list_prompts()).prompts
    received = {p.name: snap(p.model_dump(mode="json", by_alias=True, exclude_none=True)) for p in listed}
    assert len(received) == len(prompts.load())
    compare(PROMPT_SNAPS, received, "a prompt definition")


def compare(folder: Path, received: dict[str, str], what: str) -> None:
    """The snapshots in `folder` are `received` (written first with UPDATE_TOOLSNAPS=1)."""
    if UPDATE:
        folder.mkdir(exist_ok=True)
        for stale in set(p.stem for p in folder.glob("*.json")) - received.keys():
            (folder / f"{stale}.json").unlink()
        for name, text in received.items():
            (folder / f"{name}.json").write_text(text, encoding="utf-8")
    stored = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    hint = f"{what} changed: review it, then run .venv/bin/python scripts/regenerate.py"
    assert sorted(stored) == sorted(received), hint
    for name, text in received.items():
        assert text == stored[name], f"{name}: {hint}"
