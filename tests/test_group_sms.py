"""A group SMS reaches exactly the people the human was shown, whatever happens to the group.

Relatel's group endpoint sends to whoever is in the group when it is called, so the server never
calls it: it sends one SMS to each member shown, by the employee endpoint, one by one. Here a
colleague adds Eve (a premium-rate +45 90 number, never shown) to the group at each point between
the question and the last send, on every rung: the sandbox holds the server's request at that
point (the `hold` fault) while the group is changed, then lets it go. Eve never gets the SMS.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any

import anyio
import pytest
from agents import Runner

from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets

from .support import (
    ALLOW,
    Human,
    answering,
    approving,
    audit_log,
    connect,
    error_of,
    toolkit_for,
    url_only,
)
from .test_openai_agents import NO_TRACES, ScriptedModel, agent, call, outputs, say

pytestmark = pytest.mark.anyio

GROUP_SMS = ("send_employee_group_sms", {"employee_group_id": 1, "body": "Møde kl. 14 i kantinen"})
SHOWN = [1, 2, 3]  # group 1's members when the question is asked
PREVIEW = Policy(costly="preview", destructive="preview")
# Where the group changes. None: while the question is open (the re-check after the yes sees it).
POINTS: dict[str, tuple[str, str] | None] = {
    "before the re-check": None,
    "during the re-check": ("GET", "/api/v2/employee_groups/1"),  # read, its answer not yet back
    "after the re-check": ("GET", "/api/v2/employees"),  # the re-check's last read
    "between two sends": ("POST", "/api/v2/employees/1/message"),  # the first SMS out, the rest not
}
RUNGS = ["form-legacy", "form-modern", "url-legacy", "url-modern", "preview-legacy", "preview-modern",
         "toolkit", "agents"]  # fmt: skip


class Colleague:
    """Adds Eve to group 1 at a point of the call: at once if the point is None, else while the
    server's request at that point is held by the sandbox."""

    def __init__(self, sandbox: Any, point: tuple[str, str] | None) -> None:
        self.sandbox, self.point = sandbox, point
        eve = sandbox.api().post(
            "/api/v2/employees", json={"employee": {"name": "Eve", "number": "4590909090"}}
        )
        self.eve = eve.raise_for_status().json()["employee"]["id"]
        self.changed = False

    def arm(self) -> None:
        """While the question is open (called from the human's side)."""
        if self.point is None:
            self.change()
        else:
            method, path = self.point
            self.sandbox.fault(method=method, path=path, hold=True)

    def change(self) -> None:
        members = {"employee_group": {"employee_ids": [*SHOWN, self.eve]}}
        self.sandbox.api().put("/api/v2/employee_groups/1", json=members).raise_for_status()
        self.changed = True

    async def watch(self) -> None:
        """Once the request at the point is held: change the group, then let the request go."""
        if self.point is None:
            return
        with anyio.fail_after(20):
            while not await anyio.to_thread.run_sync(self._held):
                await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(self.change)
        await anyio.to_thread.run_sync(lambda: self.sandbox.control.post("/_sandbox/faults/release"))

    def _held(self) -> bool:
        return any((r["fault"] or {}).get("hold") and r["status"] is None for r in self.sandbox.requests())


def texted(sandbox: Any) -> list[int]:
    """Whom the sandbox's outbox says an SMS reached, in order."""
    return [r["employee_id"] for m in sandbox.outbox() if m["kind"] == "sms" for r in m["recipients"]]


async def run_rung(sandbox: Any, rung: str, colleague: Colleague) -> dict[str, Any]:
    """The group SMS on one rung, the colleague armed while the question is open; its result."""

    async def during() -> None:
        await anyio.to_thread.run_sync(colleague.arm)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(colleague.watch)
        return await _call(sandbox, rung, during)


async def _call(sandbox: Any, rung: str, during: Any) -> dict[str, Any]:
    kind, _, era = rung.partition("-")
    mode = "legacy" if era == "legacy" else "auto"
    if kind in ("form", "url"):
        callback = answering("accept", during=during) if kind == "form" else approving(during=during)
        with url_only() if kind == "url" else nullcontext():
            async with connect(sandbox.url, mode=mode, elicitation_callback=callback) as session:
                return _data(await session.call_tool(*GROUP_SMS))
    if kind == "preview":
        async with connect(sandbox.url, mode=mode, policy=PREVIEW) as session:
            first = await session.call_tool(*GROUP_SMS)
            assert error_of(first)["code"] == "confirmation_required"
            token = first.structured_content["confirmation"]["token"]
            await during()
            return _data(await session.call_tool(GROUP_SMS[0], {**GROUP_SMS[1], "confirmation_token": token}))
    if kind == "toolkit":

        def approve(confirmation: Any) -> bool:
            assert "(3 people)" in confirmation.question
            anyio.from_thread.run(during)
            return True

        return await toolkit_for(sandbox.url, approve).call(*GROUP_SMS)
    toolkit = toolkit_for(sandbox.url)
    model = ScriptedModel(lambda items: [call(*GROUP_SMS, "sms")], lambda items: [say(outputs(items)["sms"])])
    assistant = agent(toolkit, model)
    interrupted = await Runner.run(assistant, "Tell the group about the meeting", run_config=NO_TRACES)
    state = interrupted.to_state()
    state.approve(interrupted.interruptions[0])
    await during()
    finished = await Runner.run(assistant, state, run_config=NO_TRACES)
    return json.loads(finished.final_output)


def _data(result: Any) -> dict[str, Any]:
    return (
        result.structured_content if not result.is_error else {**result.structured_content, "is_error": True}
    )


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("rung", RUNGS)
async def test_a_group_changed_at_any_point_never_reaches_anyone_not_shown(sandbox, rung, point):
    colleague = Colleague(sandbox, POINTS[point])
    result = await run_rung(sandbox, rung, colleague)
    assert colleague.changed
    assert colleague.eve not in texted(sandbox)
    if point == "before the re-check":  # the yes is for three people; the group now has four
        assert result["error"]["code"] == "refused" and "has changed" in result["error"]["message"]
        assert texted(sandbox) == []
    else:  # the yes stands for the three people shown, and only they get it, once each
        assert result.get("is_error") is None, result
        assert result["sent"] == 3 and [r["id"] for r in result["recipients"]] == SHOWN
        assert texted(sandbox) == SHOWN


async def test_each_member_send_is_recorded_and_a_lost_answer_stops_the_rest(sandbox):
    """The second SMS's answer is lost: the first was sent, the second may or may not have been
    (never repeated), the third is not sent; the audit has a record for each send, and the
    budget of the SMS not sent is given back."""
    sandbox.fault(method="POST", path="/api/v2/employees/2/message", drop="after")
    async with connect(sandbox.url, policy=ALLOW) as session:
        error = error_of(result := await session.call_tool(*GROUP_SMS))
        records = await audit_log(session)
    assert error["code"] == "outcome_unknown" and "Sent to 1 of 3 people" in error["message"]
    assert result.structured_content["recipients"] == [
        {"id": 1, "outcome": "sent"},
        {"id": 2, "outcome": "outcome_unknown"},
        {"id": 3, "outcome": "not_sent"},
    ]
    assert "send_employee_sms (ids 3)" in error["hint"]
    assert texted(sandbox) == [1, 2]  # the dropped answer's SMS did go out
    posts = [r["path"] for r in sandbox.requests() if r["method"] == "POST"]
    assert posts == ["/api/v2/employees/1/message", "/api/v2/employees/2/message"]
    sends = [(r["decision"], r["arguments"]["recipient"]["id"]) for r in reversed(records)]
    assert sends == [("sent", 1), ("outcome_unknown", 2)]


async def test_budget_is_spent_per_member_and_given_back_for_those_not_reached(sandbox):
    """Three 1-segment SMS against a budget of 3: a refused second send (404) gives back its own
    segment and that of the third, never sent; so two more segments can be spent today."""
    budget = Policy(costly="allow", destructive="allow", budgets=Budgets(sms_segments=3))
    sandbox.fault(method="POST", path="/api/v2/employees/2/message", status=404)
    async with connect(sandbox.url, policy=budget) as session:
        first = error_of(await session.call_tool(*GROUP_SMS))
        second = await session.call_tool("send_employee_sms", {"id": 2, "body": "Møde kl. 14"})
        third = await session.call_tool("send_employee_sms", {"id": 3, "body": "Møde kl. 14"})
        fourth = error_of(await session.call_tool("send_employee_sms", {"id": 3, "body": "igen"}))
    assert first["code"] == "not_found" and "Sent to 1 of 3 people" in first["message"]
    assert not second.is_error and not third.is_error
    assert fourth["code"] == "refused" and "budget" in fourth["message"]
    assert texted(sandbox) == [1, 2, 3]


async def test_the_kill_switch_between_two_sends_stops_the_rest(sandbox, tmp_path):
    """Turned on while the first SMS is on its way: the others are not sent."""
    colleague = Colleague(sandbox, ("POST", "/api/v2/employees/1/message"))
    colleague.change = lambda: (tmp_path / "KILL_SWITCH").touch()  # type: ignore[method-assign]
    colleague.arm()
    async with (
        connect(sandbox.url, policy=ALLOW, state_dir=tmp_path) as session,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(colleague.watch)
        error = error_of(await session.call_tool(*GROUP_SMS))
    assert error["code"] == "refused" and "kill switch" in error["message"]
    assert "Sent to 1 of 3 people" in error["message"] and texted(sandbox) == [1]


async def test_a_dry_run_shows_one_request_per_member(sandbox):
    async with connect(sandbox.url, policy=Policy(dry_run=True)) as session:
        result = await session.call_tool(*GROUP_SMS)
    requests = result.structured_content["requests"]
    assert [r["path"] for r in requests] == [f"/api/v2/employees/{i}/message" for i in SHOWN]
    assert {json.dumps(r["body"]) for r in requests} == {
        json.dumps({"message": {"body": GROUP_SMS[1]["body"]}})
    }
    assert texted(sandbox) == []


def test_the_human_answers_once_for_the_whole_group(sandbox):
    human = Human()
    result = toolkit_for(sandbox.url, human).call_sync(*GROUP_SMS)
    assert result["sent"] == 3 and len(human.asked) == 1


async def test_n_members_cost_two_reads_to_ask_two_to_check_again_and_n_sends(sandbox):
    async with connect(sandbox.url, mode="legacy", elicitation_callback=answering("accept")) as session:
        await session.list_tools()  # as clients do first (the server reads what the account can use)
        sandbox.clear_requests()
        result = await session.call_tool(*GROUP_SMS)
    reads = [r["path"] for r in sandbox.requests() if r["method"] == "GET"]
    assert result.structured_content["sent"] == 3
    assert reads == ["/api/v2/employee_groups/1", "/api/v2/employees"] * 2 and texted(sandbox) == SHOWN
