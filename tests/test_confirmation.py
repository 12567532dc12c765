"""Confirmation gating: a human's yes through elicitation (or, only where an operator opted in, a
sealed preview token the agent hands back), or nothing.

MCP client ⇄ server ⇄ sandbox, in both protocol eras over streamable HTTP on a loopback socket,
counting what the sandbox received: the gate may read (GET) to compose its question, but a costly
or destructive request is sent exactly once after a yes and never otherwise. What a server keeps
(budgets, the audit, the kill switch file) and its policy's rules are tried in process: the
transport carries nothing of theirs that the tests over HTTP do not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from relatel_mcp.core import catalog
from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets

from .stores import STORES
from .support import (
    ALLOW,
    MODES,
    ROUTES,
    TOOL_COUNT,
    answering,
    approving,
    audit_log,
    connect,
    error_of,
    sent,
    url_only,
)

pytestmark = pytest.mark.anyio

CALL = ("initiate_call", {"to_number": "+45 28 11 44 77"})
GROUP_SMS = ("send_employee_group_sms", {"employee_group_id": 1, "body": "Møde kl. 14 i kantinen"})
PREVIEW = Policy(costly="preview", destructive="preview")  # the operator's opt-in: the agent confirms
GATED = {op.name for op in catalog.load() if op.gated}


# ------------------------------------------------------------------ elicitation, both eras


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_accept_sends_the_call_exactly_once(sandbox, mode, transport):
    questions: list[str] = []
    async with connect(
        sandbox.url, mode=mode, transport=transport, elicitation_callback=answering("accept", seen=questions)
    ) as session:
        result = await session.call_tool(*CALL)
        audit = await audit_log(session)
    assert not result.is_error, result.content[0].text
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]
    assert len(sandbox.outbox()) == 1
    (question,) = questions
    assert "Your phone rings first: +45 20 11 22 33, the employee named «Mette Hansen»" in question
    assert "call to +45 28 11 44 77?" in question  # who is called, and their name in the address book
    assert "the contact's name there: «Peter Vestergaard (Vestkyst VVS)»" in question
    assert (audit[0]["decision"], audit[0]["channel"], audit[0]["status"]) == ("sent", "elicitation", 200)


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_group_sms_question_names_every_member_and_the_segments(sandbox, mode, transport):
    questions: list[str] = []
    async with connect(
        sandbox.url, mode=mode, transport=transport, elicitation_callback=answering("accept", seen=questions)
    ) as session:
        result = await session.call_tool(*GROUP_SMS)
    assert result.structured_content["sent"] == 3
    question = questions[0]
    for member in (
        "+45 20 11 22 33, the employee named «Mette Hansen»",
        "+45 20 44 55 66, the employee named «Jonas Nielsen»",
        "+45 21 33 44 55, the employee named «Sofie Larsen»",
    ):
        assert member in question
    assert "GSM-7, 1 segment each" in question and "3 segments in total" in question
    assert "exactly as it will be sent (GSM-7, 1 segment each): «Møde kl. 14 i kantinen»" in question
    assert "Each of them gets their own SMS, sent one by one" in question
    assert sent(sandbox) == [("POST", f"/api/v2/employees/{member}/message") for member in (1, 2, 3)]


async def test_the_question_shows_the_estimated_cost_when_prices_are_set(sandbox):
    from relatel_mcp.policy.rules import Prices

    questions: list[str] = []
    policy = Policy(prices=Prices(sms_segment=0.35))
    async with connect(
        sandbox.url, policy=policy, elicitation_callback=answering("decline", seen=questions)
    ) as s:
        await s.call_tool(*GROUP_SMS)
    assert "Estimated cost: 1.05 DKK." in questions[0]


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_decline_cancel_or_an_unticked_box_sends_nothing(sandbox, mode, transport, action, confirm):
    async with connect(
        sandbox.url, mode=mode, transport=transport, elicitation_callback=answering(action, confirm=confirm)
    ) as session:
        error = error_of(await session.call_tool(*CALL))
        audit = await audit_log(session)
    assert error["code"] == "declined" and "nothing was sent" in error["message"]
    assert sent(sandbox) == [] and sandbox.outbox() == []
    assert audit[0]["decision"] == "declined"


async def test_no_answer_in_time_sends_nothing_handshake_era(sandbox):
    policy = Policy(elicit_timeout_seconds=0.3)
    async with connect(
        sandbox.url, mode="legacy", transport="http", policy=policy,
        elicitation_callback=answering("accept", delay=2),
    ) as s:  # fmt: skip
        error = error_of(await s.call_tool(*CALL))
    assert error["code"] == "declined" and "No answer within 0.3 s" in error["message"]
    assert sent(sandbox) == []


async def test_an_answer_after_the_request_state_expired_sends_nothing_modern_era(sandbox):
    policy = Policy(token_ttl_seconds=1)  # it expires at the whole second after the next: 1.1 s is late
    async with connect(
        sandbox.url, mode="auto", transport="http", policy=policy,
        elicitation_callback=answering("accept", delay=1.1),
    ) as s:  # fmt: skip
        error = error_of(await s.call_tool(*CALL))
    assert error["code"] == "refused" and "expired" in error["message"]
    assert sent(sandbox) == []


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_destructive_tools_ask_too(sandbox, mode, transport):
    questions: list[str] = []
    async with connect(
        sandbox.url, mode=mode, transport=transport, elicitation_callback=answering("accept", seen=questions)
    ) as session:
        result = await session.call_tool("delete_contact", {"id": 1})
    assert not result.is_error
    assert "Delete contact 1 (+45 28 11 44 77) and its 2 comments" in questions[0]
    assert "The contact's name in your address book: «Peter Vestergaard (Vestkyst VVS)»" in questions[0]
    assert sent(sandbox) == [("DELETE", "/api/v2/contacts/1")]


# ------------------------------------------------------------------ no human, no action


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_by_default_a_client_that_cannot_ask_its_user_is_offered_no_gated_tool(
    sandbox, mode, transport
):
    async with connect(sandbox.url, mode=mode, transport=transport) as session:
        listed = {t.name for t in (await session.list_tools()).tools}
        error = error_of(await session.call_tool(*CALL))
    assert listed == {op.name for op in catalog.load()} - GATED
    assert error["code"] == "refused" and "cannot ask its user" in error["message"]
    assert "--costly preview" in error["hint"] and "hijacked" in error["hint"]
    assert sent(sandbox) == []


async def test_the_instructions_say_how_an_operator_enables_gated_tools(sandbox):
    """For clients that load tools on demand: what the server is for, its toolsets, that costly
    actions ask the user, in at most 600 bytes."""
    from relatel_mcp.front.server import INSTRUCTIONS

    async with connect(sandbox.url, mode="legacy", transport="http") as session:
        assert session.session.initialize_result.instructions == INSTRUCTIONS
    assert "--costly preview" in INSTRUCTIONS and len(INSTRUCTIONS.encode()) <= 600
    assert all(op.toolset in INSTRUCTIONS for op in catalog.load())
    assert "ask the user to confirm" in INSTRUCTIONS and "phone system" in INSTRUCTIONS


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_a_client_that_can_ask_its_user_is_offered_every_tool(sandbox, mode, transport):
    async with connect(
        sandbox.url, mode=mode, transport=transport, elicitation_callback=answering("decline")
    ) as session:
        tools = (await session.list_tools()).tools
    assert len(tools) == TOOL_COUNT
    assert all("confirmation_token" not in t.input_schema["properties"] for t in tools)


# ------------------------------------------------------------------ preview tokens (opt-in)


async def preview(session: Any, tool: str, args: dict[str, Any]) -> str:
    error = error_of(await session.call_tool(tool, args))
    assert error["code"] == "confirmation_required"
    return (await session.call_tool(tool, args)).structured_content["confirmation"]["token"]


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_preview_mode_without_elicitation_a_preview_then_the_token_sends_once(sandbox, mode, transport):
    async with connect(sandbox.url, mode=mode, transport=transport, policy=PREVIEW) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
        assert "confirmation_token" in listed["initiate_call"].input_schema["properties"]
        first = await session.call_tool(*CALL)
        confirmation = first.structured_content["confirmation"]
        assert error_of(first)["code"] == "confirmation_required"
        assert (
            "Peter Vestergaard" in confirmation["question"] and confirmation["token"] in first.content[0].text
        )
        assert sent(sandbox) == []
        tool, args = CALL
        done = await session.call_tool(tool, {**args, "confirmation_token": confirmation["token"]})
        assert not done.is_error
        again = error_of(await session.call_tool(tool, {**args, "confirmation_token": confirmation["token"]}))
        audit = await audit_log(session)
    assert again["code"] == "refused" and "already used" in again["message"]
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]
    assert [a["decision"] for a in audit] == ["refused", "sent", "preview"]
    assert audit[1]["channel"] == "preview_token"
    assert all("confirmation_token" not in a["arguments"] for a in audit)


async def test_preview_mode_per_kind_and_the_old_name_elicit(sandbox):
    from relatel_mcp.settings import load_policy

    policy = load_policy(None, costly="elicit", destructive="preview")  # elicit: the old name of confirm
    assert policy.costly == "confirm"
    async with connect(sandbox.url, policy=policy) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        error = error_of(await session.call_tool(*CALL))
    assert "initiate_call" not in tools  # costly: a human must answer, and this client cannot ask
    assert "confirmation_token" in tools["delete_contact"].input_schema["properties"]  # destructive: preview
    assert error["code"] == "refused" and "cannot ask its user" in error["message"]
    assert sent(sandbox) == []


async def test_under_confirm_a_confirmation_token_is_no_argument(sandbox):
    async with connect(sandbox.url, policy=PREVIEW) as session:
        token = await preview(session, *CALL)
    async with connect(sandbox.url, elicitation_callback=answering("decline")) as session:
        error = error_of(await session.call_tool(CALL[0], {**CALL[1], "confirmation_token": token}))
    assert error["code"] == "invalid_argument" and error["field"] == "confirmation_token"
    assert sent(sandbox) == []


def _forge(token: str) -> str:
    """The same token with one bit of its sealed payload flipped (a payload made to live longer,
    say: it cannot be read, so it can only be changed blindly)."""
    import base64

    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[len(raw) // 2] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


# A confirmation token is an argument like any other, checked alike in either era: the eras take
# turns. A session binds one only where a session lasts: over 2026-07-28 HTTP there is none (the
# token is bound to its credential alone: front/server.py session_of), so "other session" is
# tried over HTTP in the handshake era, and in process as over stdio (one server, one session).
MISMATCHES = [
    ("forged", "not valid", "legacy", "http"),
    ("other arguments", "other arguments", "auto", "http"),
    ("other tool", "issued for initiate_call", "legacy", "http"),
    ("other tenant", "another account", "auto", "http"),
    ("expired", "expired", "legacy", "http"),
    ("facts changed", "has changed since", "auto", "http"),
    ("other session", "issued in another session", "legacy", "http"),
    ("other session", "issued in another session", "auto", "memory"),
]


@pytest.mark.parametrize(("case", "reason", "mode", "transport"), MISMATCHES)
async def test_tokens_that_do_not_match_this_exact_call_send_nothing(
    sandbox, tmp_path, case, reason, mode, transport
):
    policy = replace(PREVIEW, token_ttl_seconds=1) if case == "expired" else PREVIEW
    tool, args = GROUP_SMS if case == "facts changed" else CALL
    tenant = {"token": "sandbox-employee"} if case == "other tenant" else {}  # another employee
    route = {"mode": mode, "transport": transport}
    async with connect(sandbox.url, policy=policy, state_dir=tmp_path, **route) as session:
        token = await preview(session, tool, args)
        if case == "forged":
            token = _forge(token)
        if case == "other arguments":
            args = {**args, "to_number": "+45 30 11 22 44"}
        if case == "other tool":
            tool, args = "send_employee_sms", {"id": 2, "body": "hej"}
        if case == "expired":  # at the whole second after the next: 1.1 s later it has passed
            await anyio.sleep(1.1)
        if case == "facts changed":  # someone joins the group after the human saw its members
            with sandbox.client() as api:
                api.put("/api/v2/employee_groups/1", json={"employee_group": {"employee_ids": [1, 2, 3, 4]}})
        if case not in ("other tenant", "other session"):
            error = error_of(await session.call_tool(tool, {**args, "confirmation_token": token}))
    if case in ("other tenant", "other session"):  # another MCP session, on the same server state
        async with connect(sandbox.url, policy=policy, state_dir=tmp_path, **route, **tenant) as session:
            error = error_of(await session.call_tool(tool, {**args, "confirmation_token": token}))
    assert error["code"] == "refused" and reason in error["message"], error["message"]
    assert (
        sent(sandbox) == [("PUT", "/api/v2/employee_groups/1")]
        if case == "facts changed"
        else sent(sandbox) == []
    )
    assert sandbox.outbox() == []


async def test_a_token_from_another_server_secret_is_forged(sandbox, tmp_path):
    async with connect(sandbox.url, transport="http", state_dir=tmp_path / "a", policy=PREVIEW) as session:
        token = await preview(session, *CALL)
    async with connect(sandbox.url, transport="http", state_dir=tmp_path / "b", policy=PREVIEW) as session:
        error = error_of(await session.call_tool(CALL[0], {**CALL[1], "confirmation_token": token}))
    assert error["code"] == "refused" and "not valid" in error["message"]
    assert sent(sandbox) == []


# ------------------------------------------------------------------ budgets, destinations, kill switch


async def test_budget_exhausted_is_refused_and_stays_so_after_a_restart(sandbox, tmp_path):
    policy = Policy(costly="allow", budgets=Budgets(calls=1))
    async with connect(sandbox.url, policy=policy, state_dir=tmp_path) as session:
        assert not (await session.call_tool(*CALL)).is_error
        error = error_of(await session.call_tool(*CALL))
    assert error["code"] == "refused" and "budget of 1 calls" in error["message"]
    async with connect(sandbox.url, policy=policy, state_dir=tmp_path) as session:  # a new server process
        error = error_of(await session.call_tool(*CALL))
    assert error["code"] == "refused" and "budget" in error["message"]
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


async def test_sms_budget_counts_segments_times_recipients_before_asking(sandbox):
    questions: list[str] = []
    policy = Policy(budgets=Budgets(sms_segments=2))
    async with connect(
        sandbox.url, policy=policy, elicitation_callback=answering("accept", seen=questions)
    ) as s:
        error = error_of(await s.call_tool(*GROUP_SMS))
    assert error["code"] == "refused" and "3 more asked" in error["message"]
    assert questions == [] and sent(sandbox) == []  # nobody was asked for something the budget forbids


async def test_budgets_are_per_person_not_per_token(sandbox, tmp_path):
    """sandbox-tenant-* tokens all belong to Mette (the admin); sandbox-employee is Jonas."""
    policy = Policy(costly="allow", budgets=Budgets(calls=1))
    outcomes = []
    for token in ("sandbox-tenant-a", "sandbox-tenant-b", "sandbox-admin", "sandbox-employee"):
        async with connect(sandbox.url, policy=policy, state_dir=tmp_path, token=token) as session:
            outcomes.append(await session.call_tool(*CALL))
    assert [r.is_error for r in outcomes] == [False, True, True, False]
    assert "budget of 1 calls" in error_of(outcomes[1])["message"]  # Mette's second token: her budget
    assert len(sent(sandbox)) == 2


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+46 8 123 456 78", "outside the allowed destinations"), ("+45 90 90 90 90", "premium-rate")],
)
async def test_destination_allow_list_and_premium_rate_block(sandbox, number, reason):
    async with connect(sandbox.url, policy=ALLOW) as session:
        error = error_of(await session.call_tool("initiate_call", {"to_number": number}))
    assert error["code"] == "refused" and reason in error["message"]
    assert sent(sandbox) == []


async def test_the_allow_list_is_configurable(sandbox):
    policy = Policy(costly="allow", allow_prefixes=("45", "46"))
    async with connect(sandbox.url, policy=policy) as session:
        assert not (await session.call_tool("initiate_call", {"to_number": "+46 8 123 456 78"})).is_error


async def test_kill_switch_from_start_up_and_by_file_at_run_time(sandbox, tmp_path):
    async with connect(sandbox.url, policy=ALLOW, kill_switch=True) as session:  # RELATEL_MCP_KILL_SWITCH=1
        assert "kill switch" in error_of(await session.call_tool(*CALL))["message"]
    async with connect(sandbox.url, policy=ALLOW, state_dir=tmp_path) as session:
        assert not (await session.call_tool("list_tags", {})).is_error
        (tmp_path / "KILL_SWITCH").touch()
        assert "kill switch" in error_of(await session.call_tool(*GROUP_SMS))["message"]
        assert not (await session.call_tool("delete_contact", {"id": 12})).is_error  # deletes are not costly
        (tmp_path / "KILL_SWITCH").unlink()
        assert not (await session.call_tool(*CALL)).is_error
    assert sent(sandbox) == [("DELETE", "/api/v2/contacts/12"), ("POST", "/api/v2/switch/dial")]


# ------------------------------------------------------------------ dry run, read-only, audit


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_dry_run_returns_the_exact_request_and_sends_nothing(sandbox, mode, transport):
    async with connect(sandbox.url, mode=mode, transport=transport, policy=Policy(dry_run=True)) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        result = await session.call_tool(*CALL)
        deleted = await session.call_tool("delete_contact", {"id": 3})
    assert not result.is_error
    assert result.structured_content["request"] == {
        "method": "POST",
        "path": "/api/v2/switch/dial",
        "body": {"to_number": "4528114477"},
    }
    assert "Peter Vestergaard" in result.structured_content["would_ask"]
    assert deleted.structured_content["request"] == {"method": "DELETE", "path": "/api/v2/contacts/3"}
    # Nothing is sent in a dry run, so the gated tools are listed even to a client that cannot ask.
    assert tools["initiate_call"].output_schema is None and "confirmation_token" not in str(
        tools["initiate_call"]
    )
    assert sent(sandbox) == [] and sandbox.outbox() == []


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_read_only_hides_and_refuses_every_change(sandbox, mode, transport):
    async with connect(
        sandbox.url, mode=mode, transport=transport, policy=Policy(read_only=True, costly="allow")
    ) as session:
        tools = (await session.list_tools()).tools
        created = error_of(
            await session.call_tool("create_contact", {"name": "X", "number": "+45 71 99 99 99"})
        )
        called = error_of(await session.call_tool(*CALL))
        listed = await session.call_tool("list_tags", {})
    reads = {op.name for op in catalog.load() if op.kind == "read"}
    assert {t.name for t in tools} == reads and all(t.annotations.read_only_hint for t in tools)
    assert created["code"] == called["code"] == "refused" and "read-only" in created["message"]
    assert not listed.is_error
    assert sent(sandbox) == []


@pytest.mark.process  # the audit command
async def test_every_attempt_leaves_an_audit_record(sandbox, tmp_path):
    attempts = [
        (answering("accept"), Policy(), CALL, "sent"),
        (answering("decline"), Policy(), CALL, "declined"),
        (None, PREVIEW, CALL, "preview"),
        (None, Policy(), ("initiate_call", {"to_number": "+45 90 90 90 90"}), "refused"),
        (None, Policy(), ("initiate_call", {"to_number": "nope"}), "invalid"),
    ]
    for callback, policy, (tool, args), _ in attempts:
        async with connect(
            sandbox.url, state_dir=tmp_path, token="sandbox-tenant-audit", elicitation_callback=callback,
            policy=policy,
        ) as s:  # fmt: skip
            await s.call_tool(tool, args)
    async with connect(sandbox.url, state_dir=tmp_path, token="sandbox-tenant-audit") as session:
        audit = list(reversed(await audit_log(session)))
    async with connect(sandbox.url, state_dir=tmp_path, token="sandbox-tenant-other") as session:
        # Another token of the same person (Mette) sees her record, but for the one attempt made
        # before any call told whose the token is (an invalid first call is kept under the token).
        assert [a["decision"] for a in await audit_log(session)][::-1] == [a["decision"] for a in audit[:-1]]
    async with connect(sandbox.url, state_dir=tmp_path, token="sandbox-employee") as session:
        assert await audit_log(session) == []  # another person sees none of it
    # In the 2026-07-28 era a question is a round trip of its own: "asked", then the outcome.
    assert [a["decision"] for a in audit] == [
        "asked",
        "sent",
        "asked",
        "declined",
        "preview",
        "refused",
        "invalid",
    ]
    assert audit[1]["arguments"] == {"to_number": "4528114477"}
    assert audit[1]["upstream_id"] == "message=Call initiated successfully"
    assert {a["tool"] for a in audit} == {"initiate_call"} and {a["kind"] for a in audit} == {"costly"}
    assert all(len(a["account"]) == 16 and "sandbox" not in a["account"] for a in audit[:-1])
    assert audit[-1]["account"].startswith("token:")  # invalid, before the account was known
    store = STORES.url_for(tmp_path)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("relatel-mcp")), "audit", "--state-dir", str(tmp_path), "--json",
         *(["--store", store] if store else [])],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [p["decision"] for p in printed] == [a["decision"] for a in audit]
    assert "sandbox-tenant-audit" not in done.stdout


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.process  # a stdio server
async def test_tools_list_stays_within_its_context_budget(sandbox, mode):
    """The issue's limits, in compact JSON bytes (bytes/4 ≈ tokens), every tool listed to a
    real MCP client over stdio that can ask its user."""
    async with connect(
        sandbox.url, mode=mode, transport="stdio", elicitation_callback=answering("decline")
    ) as session:
        tools = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in (await session.list_tools()).tools
        ]
    view = [{k: t[k] for k in ("name", "description", "inputSchema")} for t in tools]
    size = lambda value: len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())  # noqa: E731
    assert len(tools) == TOOL_COUNT and size(view) <= 16_000 and size(tools) <= 30_000


async def test_a_made_up_elicitation_answer_without_the_servers_request_state_sends_nothing(sandbox):
    accepted = types.ElicitResult(action="accept", content={"confirm": True})
    async with connect(
        sandbox.url, mode="auto", transport="http", elicitation_callback=answering("decline")
    ) as session:
        error = error_of(await session.call_tool(*CALL, input_responses={"confirm": accepted}))
        forged = error_of(
            await session.call_tool(*CALL, input_responses={"confirm": accepted}, request_state="e30.AAAA")
        )
    assert error["code"] == forged["code"] == "refused" and "not valid" in error["message"]
    assert sent(sandbox) == []


async def test_a_request_state_confirms_one_call_only(sandbox):
    states: list[str] = []
    accepted = types.ElicitResult(action="accept", content={"confirm": True})

    async def remember(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return accepted

    async with connect(sandbox.url, mode="auto", transport="http", elicitation_callback=remember) as session:
        first = await session.session.call_tool(*CALL, allow_input_required=True)
        states.append(first.request_state)
        done = await session.call_tool(*CALL, input_responses={"confirm": accepted}, request_state=states[0])
        replay = error_of(
            await session.call_tool(*CALL, input_responses={"confirm": accepted}, request_state=states[0])
        )
    assert isinstance(first, types.InputRequiredResult) and not done.is_error
    assert replay["code"] == "refused" and "already used" in replay["message"]
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


# ------------------------------------------------------------------ what a client sees of a question


async def test_a_request_state_is_sealed_and_never_names_its_approval_page(sandbox):
    """2026-07-28 URL mode: the client (and a model it shows the state to) cannot read the state,
    so cannot find the page that approves the call; only the human's browser gets the URL."""
    import base64

    with url_only():
        async with connect(
            sandbox.url, mode="auto", transport="http", elicitation_callback=approving(None)
        ) as session:
            asked = await session.session.call_tool(*CALL, allow_input_required=True)
    assert isinstance(asked, types.InputRequiredResult)
    page_id = asked.input_requests["confirm"].params.url.rsplit("/", 1)[1]
    state = asked.request_state or ""
    raw = base64.urlsafe_b64decode(state + "=" * (-len(state) % 4))
    assert page_id not in state and page_id.encode() not in raw
    assert b"question" not in raw and b"Peter" not in raw and b"dial" not in raw  # nothing readable
    assert sent(sandbox) == []


async def test_a_url_elicitation_id_is_not_the_approval_pages_id(sandbox):
    seen: list[types.ElicitRequestURLParams] = []
    decide = approving("decline")

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        seen.append(params)
        return await decide(context, params)

    with url_only():
        async with connect(
            sandbox.url, mode="legacy", transport="http", elicitation_callback=callback
        ) as session:
            error = error_of(await session.call_tool(*CALL))
    (params,) = seen
    assert error["code"] == "declined"
    assert params.elicitation_id and params.elicitation_id not in params.url


async def test_a_preview_token_from_a_client_that_could_not_ask_is_not_a_yes_where_one_can(sandbox, tmp_path):
    """Minted for a client without elicitation (the agent confirms), handed in by one that has it:
    the human is asked, and their no sends nothing."""
    async with connect(sandbox.url, transport="http", policy=PREVIEW, state_dir=tmp_path) as without:
        token = await preview(without, *CALL)
    seen: list[str] = []
    callback = answering("decline", seen=seen)
    async with connect(
        sandbox.url, transport="http", policy=PREVIEW, state_dir=tmp_path, elicitation_callback=callback
    ) as able:
        error = error_of(await able.call_tool(CALL[0], {**CALL[1], "confirmation_token": token}))
    assert error["code"] == "declined" and len(seen) == 1 and sent(sandbox) == []


async def test_a_request_state_works_only_with_the_credential_it_was_given_to(sandbox, tmp_path):
    """Two clients of one account (two tokens of the same employee): one's question is not the
    other's to answer."""
    accepted = types.ElicitResult(action="accept", content={"confirm": True})
    options = {
        "mode": "auto",
        "transport": "http",
        "state_dir": tmp_path,
        "elicitation_callback": answering("accept"),
    }
    async with connect(sandbox.url, token="sandbox-tenant-alice", **options) as alice:
        asked = await alice.session.call_tool(*CALL, allow_input_required=True)
    async with connect(sandbox.url, token="sandbox-tenant-mallory", **options) as mallory:
        error = error_of(
            await mallory.call_tool(
                *CALL, input_responses={"confirm": accepted}, request_state=asked.request_state
            )
        )
    assert error["code"] == "refused" and "another client of this account" in error["message"]
    assert sent(sandbox) == []


async def test_a_question_the_client_fails_to_show_sends_nothing(sandbox):
    """A broken channel: the client's side of the question fails (its form cannot be shown), so
    the server gets an error instead of an answer."""

    async def broken(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        raise RuntimeError("the window went away")

    async with connect(sandbox.url, mode="legacy", elicitation_callback=broken) as session:
        error = error_of(await session.call_tool(*CALL))
        audit = await audit_log(session)
    assert error["code"] == "declined" and "nothing was sent" in error["message"], error
    assert sent(sandbox) == [] and audit[0]["decision"] == "declined"


@pytest.mark.parametrize("mode", ["allow", "deny"])
async def test_allow_sends_without_a_question_and_deny_never_sends(sandbox, mode):
    """The operator's other two modes, for a client that could be asked: nobody is."""
    seen: list[str] = []
    policy = Policy(costly=mode)
    async with connect(sandbox.url, policy=policy, elicitation_callback=answering(seen=seen)) as session:
        result = await session.call_tool(*CALL)
    assert seen == []
    if mode == "allow":
        assert not result.is_error and sent(sandbox) == [("POST", "/api/v2/switch/dial")]
    else:
        assert (
            error_of(result)["code"] == "refused" and "does not allow costly" in error_of(result)["message"]
        )
        assert sent(sandbox) == []
