"""Concise and full results: list and get tools answer with the fields an agent needs to act, and
everything with `detail: full`; through a real MCP client in both eras (which also checks every
result against the tool's output schema), against the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from relatel_mcp.core import catalog

from .support import MODES, connect, error_of
from .test_tools import untabled

pytestmark = pytest.mark.anyio

OPS = {op.name: op for op in catalog.load()}
LISTS = {  # tool -> (its list in the result, the API's path)
    "list_contacts": ("contacts", "/api/v2/contacts"),
    "list_employees": ("employees", "/api/v2/employees"),
    "list_calls": ("calls", "/api/v2/calls"),
    "list_voicemails": ("voice_mails", "/api/v2/voice_mails"),
    "list_chats": ("chats", "/api/v2/chats"),
    "list_smileys": ("smileys", "/api/v2/smileys"),
    "list_messages": ("messages", "/api/v2/messages"),
}


def nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or v == "" or nulls(v) for v in value.values())
    return isinstance(value, list) and any(nulls(v) for v in value)


def within(concise: Any, full: Any) -> bool:
    """Every value of the concise form is the full form's, at the same place."""
    if isinstance(concise, dict):
        return isinstance(full, dict) and all(k in full and within(v, full[k]) for k, v in concise.items())
    if isinstance(concise, list):
        return isinstance(full, list) and len(concise) == len(full) and all(map(within, concise, full))
    return concise == full


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", LISTS)
async def test_a_list_is_concise_by_default_and_whole_with_detail_full(sandbox, tool, mode):
    key, path = LISTS[tool]
    async with connect(sandbox.url, mode=mode) as session:
        concise = await session.call_tool(tool, {})
        full = await session.call_tool(tool, {"detail": "full"})
    upstream = sandbox.api("sandbox-admin").get(path).json()[key]
    items, whole = concise.structured_content[key], full.structured_content[key]
    assert whole == upstream  # everything the API answered
    assert within(items, whole) and not nulls(items)
    kept = set(OPS[tool].cut.fields[key].fields)
    assert set().union(*(item.keys() for item in items)) <= kept < set().union(*(i.keys() for i in whole))
    # the text a model reads: a table (field names once) of exactly the structured content
    text = concise.content[0].text.split("\n")[-1]
    table = json.loads(text)[key]
    assert set(table) == {"fields", "rows"} and untabled(json.loads(text))[key] == items
    assert len(concise.content[0].text.encode()) < len(full.content[0].text.encode())
    assert json.loads(full.content[0].text.split("\n")[-1]) == full.structured_content


@pytest.mark.parametrize("mode", MODES)
async def test_a_get_tool_is_concise_too_and_detail_is_never_sent_upstream(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        await session.list_tools()  # as clients do first (the server reads what the account can use)
        sandbox.clear_requests()
        concise = await session.call_tool("get_contact", {"id": 1})
        full = await session.call_tool("get_contact", {"id": 1, "detail": "full"})
        me = await session.call_tool("get_current_employee", {"detail": "concise"})
    assert concise.structured_content == {
        "contact": {"id": 1, "name": "Peter Vestergaard (Vestkyst VVS)", "number": "4528114477"}
    }
    assert full.structured_content["contact"]["email"] == "peter@vestkyst-vvs.dk"
    assert full.structured_content["contact"]["number_formatted"] == "28 11 44 77"
    assert "features" not in me.structured_content["employee"] and me.structured_content["employee"]["admin"]
    # detail is never sent: no request carries a query (a late start-up read of the account may be
    # among them, in any order); the contact was read once per call
    assert [r["query"] for r in sandbox.requests()] == [{}] * len(sandbox.requests())
    assert [r["path"] for r in sandbox.requests()].count("/api/v2/contacts/1") == 2
    assert "/api/v2/employee" in [r["path"] for r in sandbox.requests()]


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_keeps_who_when_and_what_happened(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        calls = (
            await session.call_tool("list_calls", {"status": "voicemail", "limit": 1})
        ).structured_content
    (call,) = calls["calls"]
    assert {"call_uuid", "started_at", "direction", "status", "endpoint", "remote_number"} <= set(call)
    assert set(call["voice_mail"]) == {"id"} and "nodes" not in call and "from_number" not in call
    assert calls["next_page"] == {"started_at_lt_or_eq": call["started_at"]}  # paging still works


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_detail_is_refused_naming_the_argument_and_nothing_is_sent(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        sandbox.clear_requests()
        error = error_of(await session.call_tool("list_calls", {"detail": "everything"}))
        tags = error_of(await session.call_tool("list_orders", {"detail": "full"}))  # no concise form
    assert error["code"] == "invalid_argument" and error["field"] == "detail"
    assert "concise, full" in error["message"]
    assert tags["code"] == "invalid_argument" and tags["field"] == "detail"
    assert [r for r in sandbox.requests() if r["path"].startswith("/api/")] == []
