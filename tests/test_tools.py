"""Every tool, through a real MCP client in both protocol eras, against the sandbox over HTTP.

Each case states the exact upstream request the sandbox must receive (method, path, query, body)
and checks the shaped result, so a wrong path, parameter name or body wrapping fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from relatel_mcp.core import catalog
from relatel_mcp.sandbox.data import fixed_uuid

from .support import ALLOW, MODES, connect

pytestmark = pytest.mark.anyio

Check = Callable[[Any, Any], None]  # (result, sandbox) -> None; asserts


@dataclass
class Case:
    tool: str
    args: dict[str, Any] | Callable[[Any], dict[str, Any]]
    method: str
    path: str | Callable[[Any], str]
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None
    check: Check = lambda result, sandbox: None
    then: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)  # more requests
    first: list[tuple[str, str]] = field(default_factory=list)  # reads before it (what a recording is)


def company(sandbox: Any) -> Any:
    return sandbox.state.companies[1]


def chat_uuid(sandbox: Any) -> str:
    return sorted(company(sandbox).chats.values(), key=lambda c: c["created_at"])[0]["uuid"]


CALL_C07 = fixed_uuid("call-c07")
START, END = "2026-11-01T00:00:00+01:00", "2026-11-21T00:00:00+01:00"


def s(result: Any) -> dict[str, Any]:
    return result.structured_content


CASES = [
    # contacts
    Case("list_contacts", {"limit": 3, "id_gt_or_eq": 2}, "GET", "/api/v2/contacts",
         {"limit": ["3"], "id_gt_or_eq": ["2"]},
         check=lambda r, sb: (
             [c["id"] for c in s(r)["contacts"]] == [2, 3, 4] or pytest.fail(s(r)),
             s(r)["next_page"] == {"id_gt_or_eq": 5} or pytest.fail(s(r)))),
    Case("get_contact", {"id": 3}, "GET", "/api/v2/contacts/3",
         check=lambda r, sb: s(r)["contact"]["name"] == "Nordisk Elektro A/S" or pytest.fail(s(r))),
    Case("find_contact_by_number", {"number": "+45 61 23 45 67"}, "GET", "/api/v2/contacts/by_number/4561234567",
         check=lambda r, sb: s(r)["contact"]["id"] == 6 or pytest.fail(s(r))),
    Case("create_contact", {"name": "Ny Kunde ApS", "number": "71 99 99 99", "email": "info@nykunde.dk"},
         "POST", "/api/v2/contacts",
         body={"contact": {"name": "Ny Kunde ApS", "number": "4571999999", "email": "info@nykunde.dk"}},
         check=lambda r, sb: company(sb).contacts[s(r)["contact"]["id"]]["number"] == "4571999999" or pytest.fail()),
    Case("update_contact", {"id": 2, "email": "anne@ny.dk"}, "PUT", "/api/v2/contacts/2",
         body={"contact": {"email": "anne@ny.dk"}},
         check=lambda r, sb: company(sb).contacts[2]["email"] == "anne@ny.dk" or pytest.fail()),
    Case("delete_contact", {"id": 12}, "DELETE", "/api/v2/contacts/12",
         check=lambda r, sb: (12 not in company(sb).contacts and "deleted" in s(r)["message"]) or pytest.fail()),
    Case("list_contact_comments", {"contact_id": 1}, "GET", "/api/v2/contacts/1/comments",
         check=lambda r, sb: [c["id"] for c in s(r)["comments"]] == [1, 2] or pytest.fail(s(r))),
    Case("create_contact_comment", {"contact_id": 3, "body": "Ring i morgen"}, "POST", "/api/v2/contacts/3/comments",
         body={"comment": {"body": "Ring i morgen"}},
         check=lambda r, sb: s(r)["comment"]["body"] == "Ring i morgen" or pytest.fail(s(r))),
    Case("delete_contact_comment", {"contact_id": 1, "id": 2}, "DELETE", "/api/v2/contacts/1/comments/2",
         check=lambda r, sb: 2 not in company(sb).comments or pytest.fail()),
    # employees
    Case("list_employees", {}, "GET", "/api/v2/employees",
         check=lambda r, sb: len(s(r)["employees"]) == 5 or pytest.fail(s(r))),
    Case("get_employee", {"id": 3}, "GET", "/api/v2/employees/3",
         check=lambda r, sb: s(r)["employee"]["name"] == "Sofie Larsen" or pytest.fail(s(r))),
    Case("get_current_employee", {}, "GET", "/api/v2/employee",
         check=lambda r, sb: s(r)["employee"]["id"] == 1 or pytest.fail(s(r))),
    Case("create_employee", {"name": "Nina Holm", "email": "nina@fjordlys.dk", "number": "+45 29 29 29 29"},
         "POST", "/api/v2/employees",
         body={"employee": {"name": "Nina Holm", "email": "nina@fjordlys.dk", "number": "4529292929"}},
         check=lambda r, sb: company(sb).employees[s(r)["employee"]["id"]]["name"] == "Nina Holm" or pytest.fail()),
    Case("update_employee", {"id": 4, "do_not_disturb": True, "dnd_timeout_at": "2026-11-28T08:00:00+01:00"},
         "PUT", "/api/v2/employees/4",
         body={"employee": {"do_not_disturb": True, "dnd_timeout_at": "2026-11-28T08:00:00+01:00"}},
         check=lambda r, sb: s(r)["employee"]["do_not_disturb"] is True or pytest.fail(s(r))),
    Case("update_current_employee", {"cloak_reception_id": "clear", "do_not_disturb": False}, "PUT", "/api/v2/employee",
         body={"employee": {"do_not_disturb": False, "cloak_reception_id": None}},
         check=lambda r, sb: s(r)["employee"]["cloak_reception"] is None or pytest.fail(s(r))),
    Case("delete_employee", {"id": 5}, "DELETE", "/api/v2/employees/5",
         check=lambda r, sb: 5 not in company(sb).employees or pytest.fail()),
    Case("send_employee_sms", {"id": 2, "body": "Husk mødet kl. 13"}, "POST", "/api/v2/employees/2/message",
         body={"message": {"body": "Husk mødet kl. 13"}},
         check=lambda r, sb: (s(r) == {"sent": 1} and sb.outbox()[-1]["kind"] == "sms") or pytest.fail(s(r))),
    # groups
    Case("list_employee_groups", {}, "GET", "/api/v2/employee_groups",
         check=lambda r, sb: [g["name"] for g in s(r)["employee_groups"]] == ["Support", "Salg"] or pytest.fail()),
    Case("get_employee_group", {"id": 1}, "GET", "/api/v2/employee_groups/1",
         check=lambda r, sb: s(r)["employee_ids"] == [1, 2, 3] or pytest.fail(s(r))),
    Case("create_employee_group", {"name": "Lager", "employee_ids": [4, 5]}, "POST", "/api/v2/employee_groups",
         body={"employee_group": {"name": "Lager", "employee_ids": [4, 5]}},
         check=lambda r, sb: company(sb).employee_groups[s(r)["id"]]["name"] == "Lager" or pytest.fail()),
    Case("update_employee_group", {"id": 2, "name": "Salg & Service"}, "PUT", "/api/v2/employee_groups/2",
         body={"employee_group": {"name": "Salg & Service"}},
         check=lambda r, sb: s(r)["name"] == "Salg & Service" or pytest.fail(s(r))),
    Case("join_employee_group", {"employee_group_id": 1}, "POST", "/api/v2/employee_groups/1/join",
         check=lambda r, sb: 1 in s(r)["employee_ids"] or pytest.fail(s(r))),
    Case("leave_employee_group", {"employee_group_id": 2}, "POST", "/api/v2/employee_groups/2/leave",
         check=lambda r, sb: 1 not in company(sb).employee_groups[2]["employee_ids"] or pytest.fail()),
    # Sent as one SMS to each member shown, never by the group endpoint (see the Safety section).
    Case("send_employee_group_sms", {"employee_group_id": 1, "body": "Møde kl. 14"}, "POST",
         "/api/v2/employees/1/message", body={"message": {"body": "Møde kl. 14"}},
         then=[("POST", f"/api/v2/employees/{i}/message", {}, {"message": {"body": "Møde kl. 14"}}) for i in (2, 3)],
         check=lambda r, sb: (
             s(r) == {"sent": 3, "recipients": [{"id": i, "outcome": "sent"} for i in (1, 2, 3)]}
             and [[r["employee_id"] for r in m["recipients"]] for m in sb.outbox()] == [[1], [2], [3]])
         or pytest.fail(sb.outbox())),
    # receptions and statistics
    Case("list_receptions", {}, "GET", "/api/v2/receptions",
         check=lambda r, sb: len(s(r)["receptions"]) == 2 or pytest.fail(s(r))),
    Case("get_reception", {"id": 2}, "GET", "/api/v2/receptions/2",
         check=lambda r, sb: s(r)["name"] == "Support" or pytest.fail(s(r))),
    Case("get_reception_statistics",
         {"id": 1, "answer_target": 20, "from_time": START, "to_time": END, "phase": ["open", "backup"]},
         "GET", "/api/v2/receptions/1/statistics",
         {"answer_target": ["20"], "from_time": [START], "to_time": [END], "phase": ["open,backup"]},
         check=lambda r, sb: s(r)["statistics"]["total"] > 0 or pytest.fail(s(r))),
    Case("get_reception_call_status", {"id": 1}, "GET", "/api/v2/receptions/1/status",
         check=lambda r, sb: set(s(r)) == {"new", "ringing", "answered"} or pytest.fail(s(r))),
    Case("get_statistics", {"endpoint_type": "reception", "group_by": "date", "start": "2026-11-01", "end": "2026-11-20"},
         "GET", "/api/v2/statistics",
         {"endpoint_type": ["reception"], "group_by": ["date"], "start": ["2026-11-01"], "end": ["2026-11-20"]},
         check=lambda r, sb: len(s(r)["rows"]) > 0 or pytest.fail(s(r))),
    # calls
    Case("list_calls", {"limit": 5, "direction": "incoming"}, "GET", "/api/v2/calls",
         {"limit": ["5"], "direction": ["incoming"]},
         check=lambda r, sb: (
             len(s(r)["calls"]) == 5 and {c["direction"] for c in s(r)["calls"]} == {"incoming"}
             and s(r)["next_page"] == {"started_at_lt_or_eq": s(r)["calls"][-1]["started_at"]}) or pytest.fail(s(r))),
    Case("get_call", {"uuid": CALL_C07}, "GET", f"/api/v2/calls/{CALL_C07}",
         check=lambda r, sb: s(r)["call"]["status"] == "voicemail" or pytest.fail(s(r))),
    Case("initiate_call", {"to_number": "+45 28 11 44 77", "restrict_to": "mobile", "cloak_reception_id": 2},
         "POST", "/api/v2/switch/dial", body={"to_number": "4528114477", "restrict_to": "mobile", "cloak_reception_id": "2"},
         check=lambda r, sb: (sb.outbox()[-1]["kind"] == "call" and sb.outbox()[-1]["to_number"] == "4528114477")
         or pytest.fail(sb.outbox())),
    # voicemails
    Case("list_voicemails", {"limit": 2}, "GET", "/api/v2/voice_mails", {"limit": ["2"]},
         check=lambda r, sb: (
             len(s(r)["voice_mails"]) == 2
             and s(r)["next_page"] == {"created_at_lt_or_eq": s(r)["voice_mails"][-1]["created_at"]}) or pytest.fail()),
    Case("get_voicemail", {"id": 2}, "GET", "/api/v2/voice_mails/2",
         check=lambda r, sb: s(r)["id"] == 2 or pytest.fail(s(r))),
    Case("update_voicemail", {"id": 2, "heard": True}, "PUT", "/api/v2/voice_mails/2", body={"voice_mail": {"heard": True}},
         check=lambda r, sb: s(r)["heard"] is True or pytest.fail(s(r))),
    Case("delete_voicemail", {"id": 4}, "DELETE", "/api/v2/voice_mails/4",
         check=lambda r, sb: 4 not in company(sb).voice_mails or pytest.fail()),
    Case("download_voicemail", {"id": 1}, "GET", "/api/v2/voice_mails/1/sound",
         first=[("GET", "/api/v2/voice_mails/1")],
         check=lambda r, sb: (
             r.content[1].type == "resource_link" and r.content[1].mime_type == "audio/mpeg"
             and r.content[1].size == len(sb.api().get("/api/v2/voice_mails/1/sound").content)
             and s(r)["voicemail"]["id"] == 1)
         or pytest.fail(r.content[0])),
    # conversations
    Case("list_chats", {"updated_at_gt_or_eq": "2026-11-10T00:00:00Z", "limit": 10}, "GET", "/api/v2/chats",
         {"updated_at_gt_or_eq": ["2026-11-10T00:00:00Z"], "limit": ["10"]},
         check=lambda r, sb: len(s(r)["chats"]) == 2 or pytest.fail(s(r))),
    Case("get_chat", lambda sb: {"uuid": chat_uuid(sb)}, "GET", lambda sb: f"/api/v2/chats/{chat_uuid(sb)}",
         check=lambda r, sb: s(r)["chat"]["uuid"] == chat_uuid(sb) or pytest.fail(s(r))),
    Case("list_smileys", {"rating": 1, "commented": True}, "GET", "/api/v2/smileys",
         {"rating": ["1"], "commented": ["true"]},
         check=lambda r, sb: all(x["rating"] == 1 and x["comment"] for x in s(r)["smileys"]) or pytest.fail(s(r))),
    Case("get_smiley_statistics", {"from_time": START, "to_time": END}, "GET", "/api/v2/smileys/statistics",
         {"from_time": [START], "to_time": [END]},
         check=lambda r, sb: s(r)["statistics"]["total"] == 6 or pytest.fail(s(r))),
    Case("list_messages", {"endpoint": "Employee#1", "detail": "full"}, "GET", "/api/v2/messages", {"endpoint": ["Employee#1"]},
         check=lambda r, sb: {m["endpoint"] for m in s(r)["messages"]} == {"Employee#1"} or pytest.fail(s(r))),
    Case("list_tags", {"name": "VIP"}, "GET", "/api/v2/tags", {"name": ["VIP"]},
         check=lambda r, sb: [t["name"] for t in s(r)["tags"]] == ["VIP"] or pytest.fail(s(r))),
    # orders and M2M
    Case("list_orders", {}, "GET", "/api/v2/orders",
         check=lambda r, sb: {o["id"] for o in s(r)["orders"]} >= {1234, 1235, 1236} or pytest.fail(s(r))),
    Case("get_order", {"id": 1234}, "GET", "/api/v2/orders/1234",
         check=lambda r, sb: s(r)["type"] == "Order::ActivateM2M" or pytest.fail(s(r))),
    Case("list_m2m_subscriptions", {}, "GET", "/api/v2/m2m/subscriptions",
         check=lambda r, sb: s(r) == {"subscription_ids": [4567, 4568, 4569]} or pytest.fail(s(r))),
    Case("get_m2m_subscription", {"id": 4567}, "GET", "/api/v2/m2m/subscriptions/4567",
         check=lambda r, sb: s(r)["description"] == "Gylletank 34" or pytest.fail(s(r))),
    Case("update_m2m_subscription", {"id": 4568, "overuse_limit_dkk": 750}, "PATCH", "/api/v2/m2m/subscriptions/4568",
         body={"subscription": {"overuse_limit_dkk": 750}},
         check=lambda r, sb: s(r)["overuse_limit_dkk"] == 750 or pytest.fail(s(r))),
    Case("get_m2m_consumption", {"numbers": ["+45 71 99 12 35"], "subscription_ids": [4568]}, "GET",
         "/api/v2/m2m/consumption", {"numbers": ["4571991235"], "subscription_ids": ["4568"]},
         check=lambda r, sb: (
             len(s(r)["rows"]) == 3 and {row["subscription_id"] for row in s(r)["rows"]} == {"4568"}
             and r.content[0].text.startswith("subscription_id,")) or pytest.fail(s(r))),
    Case("order_m2m_activation", {"product_name": "m2m-small-one", "icc_id": "89450123456789012379", "description": "Pumpe 7"},
         "POST", "/api/v2/m2m/activation_orders",
         body={"order": {"product_name": "m2m-small-one", "icc_id": "89450123456789012379", "description": "Pumpe 7"}},
         check=lambda r, sb: s(r)["order"]["id"] in company(sb).orders or pytest.fail(s(r))),
    Case("order_m2m_cancellation", {"subscription_id": 4568, "cancel_on": "2026-12-31"}, "POST",
         "/api/v2/m2m/cancellation_orders", body={"order": {"subscription_id": 4568, "cancel_on": "2026-12-31"}},
         check=lambda r, sb: sb.outbox()[-1]["kind"] == "order" or pytest.fail(sb.outbox())),
    Case("order_m2m_product_change", {"phone_number": "+45 71 99 12 34", "product_name": "m2m-large"}, "POST",
         "/api/v2/m2m/product_change_orders", body={"order": {"phone_number": "4571991234", "product_name": "m2m-large"}},
         check=lambda r, sb: sb.outbox()[-1]["kind"] == "order" or pytest.fail(sb.outbox())),
    Case("order_subscription_cancellation", {"subscription_id": 4567}, "POST", "/api/v2/subscriptions/cancellation_orders",
         body={"order": {"subscription_id": 4567}},
         check=lambda r, sb: sb.outbox()[-1]["kind"] == "order" or pytest.fail(sb.outbox())),
]  # fmt: skip


def test_every_tool_has_a_case():
    assert sorted(c.tool for c in CASES) == sorted(op.name for op in catalog.load())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.tool)
async def test_tool_sends_the_contracts_request_and_shapes_the_result(sandbox, case, mode):
    args = case.args(sandbox) if callable(case.args) else case.args
    path = case.path(sandbox) if callable(case.path) else case.path
    async with connect(sandbox.url, mode=mode, policy=ALLOW) as session:
        await session.list_tools()  # as clients do first (the server reads what the account can use)
        sandbox.clear_requests()
        result = await session.call_tool(case.tool, args)
        assert not result.is_error, result.content[0].text
        sent = sandbox.requests()
    gated = {op.name: op for op in catalog.load()}[case.tool].gated
    if gated:  # the gate first reads what the call would affect (to check and to show); only GETs
        facts, sent = sent[: -1 - len(case.then)], sent[-1 - len(case.then) :]
        assert {r["method"] for r in facts} <= {"GET"}
    else:
        first, sent = sent[: len(case.first)], sent[len(case.first) :]
        assert [(r["method"], r["path"]) for r in first] == case.first
    assert [(r["method"], r["path"], r["query"], r["body"]) for r in sent] == [
        (case.method, path, case.query, case.body),
        *case.then,
    ]
    assert all(r["token_fp"] is not None and r["status"] == 200 for r in sent)
    case.check(result, sandbox)
    op = {op.name: op for op in catalog.load()}[case.tool]
    if result.structured_content is not None and op.media is None:
        *note, data = result.content[0].text.split("\n")
        assert untabled(json.loads(data)) == result.structured_content  # the compact text form
        assert bool(note) == bool(op.concise_third_party_fields)


def untabled(text_form: dict[str, Any]) -> dict[str, Any]:
    """A concise list's text form (field names once, a row per item) as the structured objects."""
    return {
        key: [
            {f: v for f, v in zip(value["fields"], row, strict=True) if v is not None}
            for row in value["rows"]
        ]
        if isinstance(value, dict) and set(value) == {"fields", "rows"}
        else value
        for key, value in text_form.items()
    }
