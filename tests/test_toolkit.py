"""`Toolkit`: the MCP server's tools for apps that call functions without MCP, through the same
pipeline and gate, against the sandbox over HTTP.

The app's `approve` is its human rung: it is shown the gate's question, and a call is sent only
after it says True, for facts that are still what it saw. Everything a model could produce instead
(other keys, a token, nulls, JSON text, a number outside the allow-list) sends nothing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from relatel_mcp import Confirmation, Toolkit
from relatel_mcp.core.errors import ConfigError
from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets

from .hygiene import HYGIENE_TOKEN, STATE_DIRS
from .support import (
    ALLOW,
    COUNT_WITHOUT_HUMAN,
    TOOL_COUNT,
    Human,
    answering,
    connect,
    decisions,
    sent,
    toolkit_for,
)

pytestmark = pytest.mark.anyio

CALL = ("initiate_call", {"to_number": "+45 28 11 44 77"})
GROUP_SMS = ("send_employee_group_sms", {"employee_group_id": 1, "body": "Møde kl. 14 i kantinen"})
DIAL = ("POST", "/api/v2/switch/dial")


# ------------------------------------------------------------------ the same tools, the same results


async def test_a_read_gives_the_structured_result_an_mcp_client_gets(sandbox):
    async with connect(sandbox.url) as session:
        over_mcp = await session.call_tool("find_contact_by_number", {"number": "+45 28 11 44 77"})
    toolkit = toolkit_for(sandbox.url)
    as_dict = await toolkit.call("find_contact_by_number", {"number": "+45 28 11 44 77"})
    as_json = await toolkit.call("find_contact_by_number", '{"number": "+45 28 11 44 77"}')
    assert as_dict == as_json == over_mcp.structured_content
    assert as_dict["contact"]["name"] == "Peter Vestergaard (Vestkyst VVS)"


async def test_the_lists_are_the_export_with_and_without_a_human(sandbox, capsys):
    from relatel_mcp.cli import main

    for approve, flags in ((Human(), ["--with-approval"]), (None, [])):
        toolkit = toolkit_for(sandbox.url, approve)
        for format, listed in (
            ("openai", toolkit.openai_tools()),
            ("openai-responses", toolkit.openai_responses_tools()),
            ("anthropic", toolkit.anthropic_tools()),
        ):
            main(["export", "--format", format, *flags])
            assert listed == json.loads(capsys.readouterr().out)
        assert len(toolkit.openai_tools()) == (TOOL_COUNT if approve else COUNT_WITHOUT_HUMAN)


async def test_a_voicemail_recording_asked_for_inline_comes_back_as_json_able_audio(sandbox):
    data = await toolkit_for(sandbox.url).call("download_voicemail", {"id": 1, "inline": True})
    json.dumps(data)
    assert data["audio"]["mime_type"] == "audio/mpeg" and data["voicemail"]["id"] == 1
    assert (
        base64.b64decode(data["audio"]["base64"]) == sandbox.api().get("/api/v2/voice_mails/1/sound").content
    )


# ------------------------------------------------------------------ the human rung


async def test_a_yes_sends_the_call_once_after_the_gates_question(sandbox):
    human = Human(True)
    toolkit = toolkit_for(sandbox.url, human)
    result = await toolkit.call(*CALL)
    assert result == {"message": "Call initiated successfully"}
    (confirmation,) = human.asked
    assert isinstance(confirmation, Confirmation) and confirmation.tool == "initiate_call"
    assert confirmation.arguments == {"to_number": "4528114477"}  # exactly what is sent
    assert confirmation.question.startswith("Place a real phone call to +45 28 11 44 77?")
    assert "the contact's name there: «Peter Vestergaard (Vestkyst VVS)»" in confirmation.question
    assert sent(sandbox) == [DIAL] and len(sandbox.outbox()) == 1
    assert await decisions(toolkit) == [("asked", "elicitation"), ("sent", "elicitation")]


async def test_the_question_is_the_one_an_mcp_client_shows_its_user(sandbox):
    seen: list[str] = []
    async with connect(sandbox.url, elicitation_callback=answering("decline", seen=seen)) as session:
        await session.call_tool(*GROUP_SMS)
    human = Human(False)
    await toolkit_for(sandbox.url, human).call(*GROUP_SMS)
    assert [c.question for c in human.asked] == seen
    assert "GSM-7, 1 segment each" in seen[0] and "«Sofie Larsen»" in seen[0]


async def test_a_no_sends_nothing_and_is_the_error_contract(sandbox):
    toolkit = toolkit_for(sandbox.url, Human(False))
    result = await toolkit.call(*GROUP_SMS)
    assert result["is_error"] is True and result["error"]["code"] == "declined"
    assert "nothing was sent" in result["error"]["message"]
    assert sent(sandbox) == [] and sandbox.outbox() == []
    assert await decisions(toolkit) == [("asked", "elicitation"), ("declined", None)]


async def slow(confirmation: Confirmation) -> bool:
    await anyio.sleep(30)
    return True


def broken(confirmation: Confirmation) -> bool:
    raise RuntimeError("the terminal went away")


async def async_no(confirmation: Confirmation) -> bool:
    return False


@pytest.mark.parametrize(
    "approve",
    [Human("yes"), Human(1), Human(None), broken, async_no, slow],
    ids=["says-yes-as-text", "says-1", "says-nothing", "raises", "async-no", "never-answers"],
)
async def test_only_true_is_a_yes(sandbox, approve):
    policy = Policy(elicit_timeout_seconds=0.5)
    with anyio.fail_after(10):
        result = await toolkit_for(sandbox.url, approve, policy=policy).call(*CALL)
    assert result["error"]["code"] == "declined"
    assert sent(sandbox) == [] and sandbox.outbox() == []


async def test_an_async_approve_is_awaited(sandbox):
    asked: list[str] = []

    async def approve(confirmation: Confirmation) -> bool:
        asked.append(confirmation.tool)
        return True

    assert not (await toolkit_for(sandbox.url, approve).call(*CALL)).get("is_error")
    assert asked == ["initiate_call"] and sent(sandbox) == [DIAL]


async def test_a_group_changed_while_the_human_decides_sends_nothing(sandbox):
    """A colleague (another toolkit, on the same account) adds a premium-rate and a Swedish
    employee to the group while the question is open; the yes is for the three people shown."""
    api = sandbox.api()
    eve = api.post("/api/v2/employees", json={"employee": {"name": "Eve", "number": "4590909090"}})
    sven = api.post("/api/v2/employees", json={"employee": {"name": "Sven", "number": "46812345678"}})
    colleague = toolkit_for(sandbox.url, policy=ALLOW)
    members = [1, 2, 3, eve.json()["employee"]["id"], sven.json()["employee"]["id"]]

    def approve(confirmation: Confirmation) -> bool:  # runs in a worker thread: call_sync works there
        changed = colleague.call_sync("update_employee_group", {"id": 1, "employee_ids": members})
        assert not changed.get("is_error"), changed
        return True

    result = await toolkit_for(sandbox.url, approve).call(*GROUP_SMS)
    assert result["error"]["code"] == "refused"
    assert "has changed since the question was asked" in result["error"]["message"]
    assert "«Eve»" in result["error"]["message"] and "«Sven»" in result["error"]["message"]
    assert ("POST", "/api/v2/employee_groups/1/message") not in sent(sandbox) and sandbox.outbox() == []


# ------------------------------------------------------------------ no human, no action


async def test_without_approve_gated_tools_are_not_listed_and_are_refused(sandbox):
    toolkit = toolkit_for(sandbox.url)
    assert "initiate_call" not in {t["name"] for t in toolkit.anthropic_tools()}
    result = await toolkit.call(*CALL)
    assert result["error"]["code"] == "refused" and "cannot ask its user" in result["error"]["message"]
    assert sent(sandbox) == [] and await decisions(toolkit) == [("refused", None)]


async def test_preview_mode_without_approve_is_the_operators_opt_in_as_over_mcp(sandbox):
    toolkit = toolkit_for(sandbox.url, policy=Policy(costly="preview"))
    first = await toolkit.call(*CALL)
    token = first["confirmation"]["token"]
    assert first["error"]["code"] == "confirmation_required" and sent(sandbox) == []
    done = await toolkit.call(CALL[0], {**CALL[1], "confirmation_token": token})
    again = await toolkit.call(CALL[0], {**CALL[1], "confirmation_token": token})
    assert not done.get("is_error") and again["error"]["code"] == "refused"
    assert sent(sandbox) == [DIAL]


ATTEMPTS = {
    "an-extra-key": ("initiate_call", {**CALL[1], "approved": True}, "invalid_argument"),
    "a-token-in-confirm-mode": ("initiate_call", {**CALL[1], "confirmation_token": "x"}, "invalid_argument"),
    "null-for-a-required-argument": ("initiate_call", {"to_number": None}, "invalid_argument"),
    "json-that-is-no-object": ("initiate_call", '["+45 28 11 44 77"]', "invalid_argument"),
    "broken-json": ("initiate_call", '{"to_number": "+45 28', "invalid_argument"),
    "deep-json": ("initiate_call", "[" * 100_000 + "]" * 100_000, "invalid_argument"),
    "a-number-outside-the-allow-list": ("initiate_call", {"to_number": "+46 8 123 456 78"}, "refused"),
    "a-premium-rate-number": ("initiate_call", {"to_number": "+45 90 90 90 90"}, "refused"),
    "an-unknown-tool": ("initiate_calls", CALL[1], "invalid_argument"),
    "an-sms-to-a-group-that-does-not-exist": (
        "send_employee_group_sms",
        {"employee_group_id": 99, "body": "x"},
        "not_found",
    ),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
async def test_what_a_model_can_send_instead_sends_nothing_and_asks_no_one(sandbox, attempt):
    tool, arguments, code = attempt
    human = Human(True)
    result = await toolkit_for(sandbox.url, human).call(tool, arguments)
    assert result["is_error"] is True and result["error"]["code"] == code, result
    assert human.asked == [] and sent(sandbox) == [] and sandbox.outbox() == []
    if tool == "initiate_calls":
        assert "Did you mean initiate_call" in result["error"]["message"]


@pytest.mark.parametrize("token", ["minted by a Toolkit without approve", "forged"])
async def test_a_preview_token_never_stands_in_for_a_human_who_can_be_asked(sandbox, tmp_path, token):
    """A token given where nobody could be asked (agent confirmation), handed to a Toolkit that
    has `approve`: the human is asked all the same, and their no sends nothing."""
    policy = Policy(costly="preview")
    agent_confirms = toolkit_for(sandbox.url, policy=policy, state_dir=tmp_path)
    minted = error_of_data(await agent_confirms.call(*CALL))["confirmation"]["token"]
    human = Human(False)
    given = minted if token.startswith("minted") else "forged.token"
    result = await toolkit_for(sandbox.url, human, policy=policy, state_dir=tmp_path).call(
        CALL[0], {**CALL[1], "confirmation_token": given}
    )
    assert result["error"]["code"] == "declined", result
    assert len(human.asked) == 1 and sent(sandbox) == []


async def test_a_preview_token_works_only_in_the_toolkit_that_gave_it(sandbox, tmp_path):
    policy = Policy(costly="preview")  # two Toolkits of one app: the same state, secret and token
    giver = toolkit_for(sandbox.url, policy=policy, state_dir=tmp_path)
    other = toolkit_for(sandbox.url, policy=policy, state_dir=tmp_path)
    token = error_of_data(await giver.call(*CALL))["confirmation"]["token"]
    elsewhere = await other.call(CALL[0], {**CALL[1], "confirmation_token": token})
    assert elsewhere["error"]["code"] == "refused" and "another session" in elsewhere["error"]["message"]
    assert sent(sandbox) == []
    here = await giver.call(CALL[0], {**CALL[1], "confirmation_token": token})
    assert not here.get("is_error") and sent(sandbox) == [DIAL]


def error_of_data(result: dict[str, Any]) -> dict[str, Any]:
    assert result["is_error"] is True and result["error"]["code"] == "confirmation_required", result
    return result


async def test_the_kill_switch_stops_the_call_before_anyone_is_asked(sandbox, monkeypatch, tmp_path):
    state = tmp_path / "state"
    STATE_DIRS.append(state)
    environment = {"RELATEL_TOKEN": HYGIENE_TOKEN, "RELATEL_BASE_URL": sandbox.url,
                   "RELATEL_MCP_STATE_DIR": str(state), "RELATEL_MCP_KILL_SWITCH": "1"}  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    human = Human(True)
    result = await Toolkit.from_env(human).call(*CALL)
    assert result["error"]["code"] == "refused" and "kill switch" in result["error"]["message"]
    assert human.asked == [] and sent(sandbox) == []


async def test_the_budget_is_kept_across_calls_of_an_open_toolkit(sandbox):
    human = Human(True)
    async with toolkit_for(sandbox.url, human, policy=Policy(budgets=Budgets(calls=1))) as toolkit:
        first = await toolkit.call(*CALL)
        second = await toolkit.call(*CALL)
    assert not first.get("is_error") and second["error"]["code"] == "refused"
    assert "budget" in second["error"]["message"] and len(human.asked) == 1
    assert sent(sandbox) == [DIAL]


# ------------------------------------------------------------------ null is "not given"; "clear" clears


async def test_a_strict_models_nulls_change_nothing_and_clear_clears(sandbox):
    """A strict model sends every argument; its nulls must not clear the do-not-disturb end or the
    caller-id reception. "clear" sends the null that clears, as MCP's null does."""
    toolkit = toolkit_for(sandbox.url)
    nulls = {"name": None, "do_not_disturb": None, "dnd_timeout_at": None, "cloak_reception_id": None}
    renamed = await toolkit.call("update_current_employee", {**nulls, "name": "Mette H."})
    cleared = await toolkit.call("update_current_employee", {**nulls, "cloak_reception_id": "clear"})
    nothing = await toolkit.call("update_current_employee", nulls)
    async with connect(sandbox.url) as session:
        await session.call_tool("update_current_employee", {"cloak_reception_id": None})
    bodies = [r["body"] for r in sandbox.requests() if r["method"] == "PUT"]
    assert bodies == [
        {"employee": {"name": "Mette H."}},
        {"employee": {"cloak_reception_id": None}},
        {"employee": {"cloak_reception_id": None}},  # the MCP client's null: the same request
    ]
    assert (
        renamed["employee"]["cloak_reception"] is not None and cleared["employee"]["cloak_reception"] is None
    )
    assert nothing["error"]["code"] == "invalid_argument" and "at least one" in nothing["error"]["message"]


# ------------------------------------------------------------------ settings and event loops


def test_call_sync_works_without_an_event_loop(sandbox):
    human = Human(True)
    toolkit = toolkit_for(sandbox.url, human)
    assert toolkit.call_sync("get_current_employee")["employee"]["name"] == "Mette Hansen"
    assert toolkit.call_sync(*CALL) == {"message": "Call initiated successfully"}
    assert len(human.asked) == 1 and sent(sandbox) == [DIAL]


def test_from_env_takes_the_servers_settings_token_and_policy(sandbox, monkeypatch, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text('[policy]\ncostly = "deny"\n', encoding="utf-8")
    state = Path(tmp_path / "state")
    STATE_DIRS.append(state)
    for name, value in {
        "RELATEL_TOKEN": HYGIENE_TOKEN,
        "RELATEL_BASE_URL": sandbox.url,
        "RELATEL_MCP_CONFIG": str(config),
        "RELATEL_MCP_STATE_DIR": str(state),
    }.items():
        monkeypatch.setenv(name, value)
    toolkit = Toolkit.from_env(approve=Human(True), toolsets=["calls", "contacts"])
    listed = {t["name"] for t in toolkit.anthropic_tools()}
    assert "initiate_call" not in listed and "delete_contact" in listed  # costly denied, deletes asked
    assert {t["name"] for t in Toolkit.from_env(read_only=True).anthropic_tools()} >= {"list_calls"}
    assert not any(
        t["name"].startswith(("create", "update")) for t in Toolkit.from_env(read_only=True).anthropic_tools()
    )
    result = toolkit.call_sync("list_calls", {"limit": 1})
    assert len(result["calls"]) == 1
    monkeypatch.delenv("RELATEL_TOKEN")
    with pytest.raises(ConfigError, match="RELATEL_TOKEN is not set"):
        Toolkit.from_env()


def test_unknown_toolsets_are_an_error_at_once(monkeypatch):
    monkeypatch.setenv("RELATEL_TOKEN", HYGIENE_TOKEN)
    with pytest.raises((ConfigError, ValueError), match="unknown toolsets"):  # as the server says it
        Toolkit.from_env(toolsets=["sms"])


def test_results_never_carry_the_token(sandbox):
    """A model may paste the token anywhere; it never comes back (the suite's scan checks all)."""
    toolkit = toolkit_for(sandbox.url, Human(False))
    for name, arguments in (
        ("create_contact", {"name": HYGIENE_TOKEN, "number": "+45 28 11 44 78"}),
        (HYGIENE_TOKEN, {}),
        ("send_employee_sms", {"id": 2, "body": HYGIENE_TOKEN}),
    ):
        assert HYGIENE_TOKEN not in json.dumps(toolkit.call_sync(name, arguments))
