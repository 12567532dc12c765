"""What a new user meets in the first hour, through a real MCP client against the sandbox: contact
numbers as people have them, a close match for a mistyped argument, and a dry run that costs
nothing."""

from __future__ import annotations

import pytest

from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets

from .support import MODES, audit_log, connect, error_of, sent

pytestmark = pytest.mark.anyio

UNALLOCATED = "+45 70 00 00 01"  # plausible (a Danish length) but in no range libphonenumber knows


# ------------------------------------------------------------------ contacts


@pytest.mark.parametrize("mode", MODES)
async def test_a_contact_may_hold_any_plausible_number_but_a_call_needs_a_valid_one(sandbox, mode):
    async with connect(sandbox.url, mode=mode, policy=Policy(costly="allow")) as session:
        created = await session.call_tool("create_contact", {"name": "Ny kunde", "number": UNALLOCATED})
        found = await session.call_tool("find_contact_by_number", {"number": UNALLOCATED})
        listed = await session.call_tool("list_contacts", {"number": "4570000001"})
        call = error_of(await session.call_tool("initiate_call", {"to_number": UNALLOCATED}))
    assert not created.is_error, created
    assert created.structured_content["contact"]["number"] == "4570000001"
    assert found.structured_content["contact"]["name"] == "Ny kunde"
    assert [c["name"] for c in listed.structured_content["contacts"]] == ["Ny kunde"]
    assert call["code"] == "invalid_argument" and call["field"] == "to_number"
    assert ("POST", "/api/v2/switch/dial") not in sent(sandbox)


@pytest.mark.parametrize("bad", ["+45 1234", "+45 71 99 99 99 99", "+999 123456", "not a number"])
async def test_a_contact_number_must_still_be_plausible(sandbox, bad):
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("create_contact", {"name": "X", "number": bad}))
    assert error["code"] == "invalid_argument" and error["field"] == "number"
    assert sent(sandbox) == []


@pytest.mark.parametrize(
    "arguments",
    [{"name": "Kun et navn"}, {"number": "+45 71 99 99 98"}, {"name": "Begge", "number": "71999998"}],
)
async def test_create_contact_needs_a_name_or_a_number_not_both(sandbox, arguments):
    async with connect(sandbox.url) as session:
        result = await session.call_tool("create_contact", arguments)
        schema = next(
            t for t in (await session.list_tools()).tools if t.name == "create_contact"
        ).input_schema
    assert not result.is_error, result
    contact = result.structured_content["contact"]
    assert contact["name"] == arguments.get("name") and (contact["number"] is None) == (
        "number" not in arguments
    )
    assert "required" not in schema  # the contract requires neither


async def test_create_contact_with_none_of_name_number_and_email_is_refused_before_sending(sandbox):
    """The contract requires none of the three (an email alone goes to Relatel to accept or
    refuse), but a contact with none of them would be no one."""
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("create_contact", {}))
        by_email = error_of(await session.call_tool("create_contact", {"email": "a@example.com"}))
    assert error["code"] == "invalid_argument" and "name, number, email" in error["message"]
    assert by_email["code"] == "rejected"  # the sandbox, as Relatel, wants a name or a number
    assert sent(sandbox) == [("POST", "/api/v2/contacts")]


# ------------------------------------------------------------------ a mistyped argument


@pytest.mark.parametrize(
    ("tool", "arguments", "wrong", "meant"),
    [
        (
            "create_contact_comment",
            {"contact_id": 1, "text": "Ring tilbage"},
            "text",
            "body",
        ),  # no letters shared
        ("list_contacts", {"limt": 5}, "limt", "limit"),  # a typo
        ("initiate_call", {"to": "+45 28 11 44 77"}, "to", "to_number"),
    ],
)
async def test_an_unknown_argument_names_the_one_that_was_meant(sandbox, tool, arguments, wrong, meant):
    async with connect(sandbox.url, policy=Policy(costly="allow")) as session:
        error = error_of(await session.call_tool(tool, arguments))
    assert error["code"] == "invalid_argument"
    assert f"{wrong}: unknown argument (did you mean {meant}?)" in error["message"]
    assert sent(sandbox) == []


async def test_an_unknown_argument_with_nothing_close_gets_no_guess(sandbox):
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("list_contacts", {"colour": "blue"}))
    assert "colour: unknown argument. Nothing was sent." in error["message"]


# ------------------------------------------------------------------ dry run


async def test_dry_run_spends_no_budget(sandbox, tmp_path):
    """Dry runs of a costly call, beyond the day's budget, then the real call: the budget is whole."""
    budgets = Budgets(calls=1, sms_segments=1)
    call = ("initiate_call", {"to_number": "+45 28 11 44 77"})
    sms = ("send_employee_sms", {"id": 2, "body": "Hej"})
    async with connect(sandbox.url, state_dir=tmp_path, policy=Policy(dry_run=True, budgets=budgets)) as dry:
        runs = [await dry.call_tool(*step) for step in (call, call, call, sms, sms)]
    assert all(not r.is_error and r.structured_content["dry_run"] is True for r in runs), runs
    assert sent(sandbox) == []
    async with connect(
        sandbox.url, state_dir=tmp_path, policy=Policy(costly="allow", budgets=budgets)
    ) as real:
        placed, texted = await real.call_tool(*call), await real.call_tool(*sms)
        again = error_of(await real.call_tool(*call))
        records = await audit_log(real)
    assert not placed.is_error and not texted.is_error, (placed, texted)
    assert again["code"] == "refused" and "budget" in again["message"]  # the one real call used it
    assert [r["decision"] for r in records].count("dry_run") == 5
