"""The gate every costly and destructive call passes before a request leaves: it fails closed.

In order: read-only mode, the operator's mode for the kind (deny / allow / preview / confirm), the
kill switch, the destination allow-list and premium-rate block, the daily budget of the person
behind the token, and then a yes through the best channel the client has:

1. a human's answer to a form: 2025-11-25 `elicitation/create` on the back-channel, or a
   2026-07-28 `InputRequiredResult` whose request state is sealed to this exact call (the rounds
   a chat app's Toolkit goes through too: its `approve`, or an Agents SDK approval, is the human);
2. a human's answer on an approval page (URL-mode elicitation), where the client can open a URL
   but not show a form;
3. only in `preview` mode, and only where no human can be asked, the agent's own yes: the first
   call returns the question and a sealed single-use token, the second call carries it, in the
   same session (this stops accidents, not a hijacked agent); a client that can ask its user is
   asked, whatever token it brings;
4. otherwise a refusal that says how an operator can enable a channel.

Request states and preview tokens are sealed (encrypted and authenticated, see seal.py) to the
tool, the exact arguments, the account, the credential they were given to and the facts shown;
a URL question's elicitation id is not its page's id, so nothing a client holds opens the page.

After every yes the facts are resolved again just before sending, and the call goes out only if
they equal what was confirmed (a group that gained a premium-rate member while the question was
open sends nothing). Each round resolves the facts once: where the yes arrived before the round
(a preview token, a 2026-07-28 retry), that resolution is the re-check; where it arrived during
the round (a 2025-11-25 question, an approval page decided while waiting), they are resolved once
more. A group SMS is then sent to each person shown, one by one (facts.py): whoever joins the group
after the question is not among them. A decline, a cancel, no answer in time, a broken channel, or
a token that is forged, expired, replayed, or for another tool, other arguments, another account,
client or session, or changed facts: nothing is sent.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import anyio
import mcp.types as types
from mcp.shared.exceptions import MCPError

from ..core import phones, traces
from ..core.catalog import Operation
from ..core.errors import ToolError
from ..core.metrics import NO_METRICS, Metrics
from ..core.models import Args
from ..store import ApprovalPage, Store
from .approvals import Approvals
from .facts import Facts, Reader, resolve
from .rules import Policy
from .seal import Sealer, digest

CONFIRM_KEY = "confirm"
CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {CONFIRM_KEY: {"type": "boolean", "title": "Yes, do it", "description": "Tick to confirm"}},
    "required": [CONFIRM_KEY],
}
Elicit = Callable[[str, dict[str, Any]], Awaitable[types.ElicitResult]]
ElicitUrl = Callable[[str, str, str], Awaitable[types.ElicitResult]]  # message, url, elicitation id


class PageHost(Protocol):
    """Where an approval page can be reached by the human's browser."""

    async def url(self, page: ApprovalPage) -> str: ...


@dataclass(frozen=True)
class Channel:
    """How this tools/call can reach a human."""

    modern: bool = False  # 2026-07-28: ask with InputRequiredResult rounds
    form: bool = False  # the client can show a form now (declared, and a back-channel if handshake era)
    url: bool = False  # the client can open a URL now, and there is somewhere to serve the page
    elicit: Elicit | None = None  # handshake era: send a form elicitation/create and wait
    elicit_url: ElicitUrl | None = None  # handshake era: send a URL elicitation/create and wait
    completed: Callable[[str], Awaitable[None]] | None = None  # notifications/elicitation/complete
    pages: PageHost | None = None
    input_responses: dict[str, Any] | None = None
    request_state: str | None = None
    session: str = ""  # the MCP session or Toolkit the call came from: a preview token works only there

    @property
    def human(self) -> bool:
        return self.form or self.url


@dataclass(frozen=True)
class _Binding:
    """Whom a sealed request state or preview token is for: the account, the credential it came
    with, and (a preview token only) the session it was given in."""

    account: str
    holder: str
    session: str


@dataclass
class Approval:
    channel: str  # none | policy_allow | elicitation | approval_page | preview_token | dry_run
    facts: Facts | None = None
    spent: tuple[str, str, int] | None = None  # (day, budget kind, amount)


class NoAnswer(ToolError):
    """Declined because no answer came in time: told apart from a no for the metrics alone."""


_P = ParamSpec("_P")
_R = TypeVar("_R")
_PASSED = {"elicitation": "approved", "approval_page": "approved", "preview_token": "approved",
           "policy_allow": "allowed", "dry_run": "dry_run"}  # fmt: skip
_STOPPED = {"refused": "refused", "declined": "declined", "confirmation_required": "preview"}


def _counted(
    step: Callable[Concatenate[Gate, Operation, _P], Awaitable[_R]],
) -> Callable[Concatenate[Gate, Operation, _P], Awaitable[_R]]:
    """Counts what the gate decided in `step`, once: the yes or pass it returns, or the refusal,
    the no, the time-out or the preview it raises (`asked` is counted where a question goes out)."""

    @functools.wraps(step)
    async def counted(gate: Gate, op: Operation, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            result = await step(gate, op, *args, **kwargs)
        except ToolError as error:
            outcome = "timed_out" if isinstance(error, NoAnswer) else _STOPPED.get(error.code)
            if outcome is not None:
                gate.metrics.gate(op.name, outcome)
            raise
        if isinstance(result, Approval) and result.channel in _PASSED:
            gate.metrics.gate(op.name, _PASSED[result.channel])
        return result

    return counted


class Gate:
    def __init__(
        self,
        policy: Policy,
        store: Store,
        sealer: Sealer,
        state_dir: Path,
        *,
        kill_switch: bool = False,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.policy = policy
        self.metrics = metrics  # outcomes, budgets spent and given back
        self.kill_switch = kill_switch  # RELATEL_MCP_KILL_SWITCH, as the process started
        self.store = store
        self.sealer = sealer
        self.approvals = Approvals(store)
        self.kill_switch_file = state_dir / "KILL_SWITCH"

    @_counted
    async def authorize(
        self,
        op: Operation,
        args: Args,
        account: str,
        channel: Channel,
        token: str | None,
        read: Reader,
        *,
        holder: str,
    ) -> Approval | types.InputRequiredResult:
        """`account` is whose account the call acts on; `holder`, whose credential it came with (a
        request state or preview token is honoured only for the same)."""
        mode = self._mode(op)
        if mode is None:
            return Approval("none")
        facts = await resolve(op.operation, args, read, self.policy.prices)
        if self.policy.dry_run or mode == "allow":
            await self._check(account, facts)
            return Approval("dry_run" if self.policy.dry_run else "policy_allow", facts)
        bound = _Binding(account, holder, channel.session)
        if token is not None and not channel.human:  # preview mode only (see Pipeline); a human first
            await self._redeem("preview", token, op, args, bound, facts)  # a change is reported as such
            await self._check(account, facts)
            return Approval("preview_token", facts)
        if channel.human and channel.modern and (channel.request_state or channel.input_responses):
            return await self._answered(op, args, bound, channel, facts, read)
        await self._check(account, facts)  # refuse what no yes could allow, before asking anyone
        if channel.human:
            return await self._ask(op, args, bound, channel, facts, read)
        if mode == "preview":
            raise self._preview(op, args, bound, facts)
        raise _refused(
            f"{op.name} needs a human's yes and this client cannot ask its user (it declares no "
            "elicitation it can use now).",
            "Use a client that supports MCP elicitation. An operator can instead let the agent confirm "
            f"with --{op.kind} preview, which stops accidents but not a hijacked agent.",
        )

    # ------------------------------------------------------------------ checks

    def _mode(self, op: Operation) -> str | None:
        if self.policy.hides(op.kind):
            raise _refused(f"{op.name} changes the account, and this server runs in read-only mode.")
        mode = self.policy.mode(op.kind)
        if mode == "deny":
            raise _refused(f"the operator does not allow {op.kind} actions ({op.name}) on this server.")
        if mode is not None and op.kind == "costly" and self.killed():
            raise _refused(
                "the kill switch is on: every costly action is stopped.", "An operator turns it off."
            )
        return mode

    def killed(self) -> bool:
        """On from start-up by the environment, or while the KILL_SWITCH file exists (looked at on
        every costly call, so an operator stops a running server with `touch`)."""
        return self.kill_switch or self.kill_switch_file.exists()

    async def _check(self, account: str, facts: Facts) -> None:
        """What no yes can allow: a destination outside the allow-list, a budget exceeded."""
        self._check_destinations(facts)
        await self._check_budget(account, facts)

    async def _recheck(self, op: Operation, args: Args, confirmed: Facts, read: Reader) -> Facts:
        """After a yes that came during this round: the facts again, sent only if unchanged
        (and then every check on them gives what it gave before the question)."""
        facts = await resolve(op.operation, args, read, self.policy.prices)
        if facts.shown != confirmed.shown:
            raise _changed(facts.changes_since(confirmed.question))
        return facts

    def _check_destinations(self, facts: Facts) -> None:
        for number in facts.destinations:
            if not number.startswith(self.policy.allow_prefixes):
                raise _refused(
                    f"{_shown(number)} is outside the allowed destinations ({', '.join('+' + p for p in self.policy.allow_prefixes)}).",
                    "An operator can widen [destinations] allow.",
                )
            if self.policy.block_premium_rate and phones.is_premium_rate(number):
                raise _refused(f"{_shown(number)} is a premium-rate number; calls and SMS to it are blocked.")

    async def _check_budget(self, account: str, facts: Facts) -> None:
        if facts.spend is None:
            return
        kind, amount = facts.spend
        limit = getattr(self.policy.budgets, kind)
        used = await self.store.used(account, _today(), kind)
        if used + amount > limit:
            self.metrics.budget_exhausted(kind)
            raise _refused(
                f"today's budget of {limit} {kind.replace('_', ' ')} would be exceeded ({used} used, {amount} more asked).",
                "The budget resets at midnight UTC; an operator can raise it in [budgets].",
            )

    @_counted
    async def spend(self, op: Operation, account: str, approval: Approval) -> None:
        """Just before an approved call is sent: the kill switch once more (a question can be open
        for minutes), then its budget, taken atomically."""
        if op.kind == "costly" and self.killed():
            raise _refused("the kill switch was turned on: every costly action is stopped.")
        if approval.facts is None or approval.facts.spend is None:
            return
        kind, amount = approval.facts.spend
        day = _today()
        if not await self.store.spend(account, day, kind, amount, getattr(self.policy.budgets, kind)):
            self.metrics.budget_exhausted(kind)
            raise _refused(f"today's budget of {kind.replace('_', ' ')} is used up.")
        approval.spent = (day, kind, amount)
        self.metrics.budget_spent(kind, amount)

    async def refund(self, account: str, approval: Approval) -> None:
        if approval.spent is not None:
            await self.store.refund(account, *approval.spent)
            self.metrics.budget_refunded(*approval.spent[1:])
            approval.spent = None

    # ------------------------------------------------------------------ asking a human

    async def _ask(
        self, op: Operation, args: Args, bound: _Binding, channel: Channel, facts: Facts, read: Reader
    ) -> Approval | types.InputRequiredResult:
        traces.event("asked", {"relatel.ask.via": "form" if channel.form else "url"})
        self.metrics.gate(op.name, "asked")
        if channel.modern:
            return await self._question(op, args, bound, channel, facts)
        if channel.form:
            assert channel.elicit is not None
            self._accepted(await self._answer(channel.elicit(facts.question, CONFIRM_SCHEMA)), form=True)
            via = "elicitation"
        else:
            await self._approve_on_page(op, channel, facts)
            via = "approval_page"
        return Approval(via, await self._recheck(op, args, facts, read))

    async def _question(
        self, op: Operation, args: Args, bound: _Binding, channel: Channel, facts: Facts
    ) -> types.InputRequiredResult:
        """2026-07-28: the question goes out in the result; the answer comes with a retry."""
        if channel.form:
            params: types.ElicitRequestParams = types.ElicitRequestFormParams(
                message=facts.question, requested_schema=CONFIRM_SCHEMA
            )
            state = self._seal("elicit", op, args, bound, facts, question=facts.question)
        else:
            page = await self.approvals.open(facts.question, op.name, self.policy.token_ttl_seconds)
            url = await _page_url(channel, page)
            params = types.ElicitRequestURLParams(message=_page_message(op), url=url)
            state = self._seal("elicit", op, args, bound, facts, question=facts.question, page=page.id)
        request = types.ElicitRequest(params=params)
        return types.InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state=state)

    async def _answered(
        self, op: Operation, args: Args, bound: _Binding, channel: Channel, facts: Facts, read: Reader
    ) -> Approval:
        """2026-07-28: the retry that carries the answer; its facts were resolved after it."""
        payload = await self._redeem("elicit", channel.request_state or "", op, args, bound, facts)
        await self._check(bound.account, facts)
        page_id = payload.get("page")
        answer = (channel.input_responses or {}).get(CONFIRM_KEY)
        if page_id is None:
            self._accepted(answer, form=True)
            return Approval("elicitation", facts)
        page = await self.approvals.get(str(page_id))
        if page is None:
            raise NoAnswer("declined", "The approval page expired before it was answered; nothing was sent.")
        waited = page.decision is None
        try:
            self._accepted(answer, form=False)
            await self._decision(page)
        finally:
            await self.approvals.close(page)
        return Approval("approval_page", await self._recheck(op, args, facts, read) if waited else facts)

    async def _approve_on_page(self, op: Operation, channel: Channel, facts: Facts) -> None:
        """2025-11-25 URL mode: the client opens the page; the human decides there."""
        assert channel.elicit_url is not None
        page = await self.approvals.open(facts.question, op.name, self.policy.elicit_timeout_seconds)
        elicitation = secrets.token_urlsafe(16)  # the client's handle: never the page's secret id
        try:
            url = await _page_url(channel, page)
            self._accepted(
                await self._answer(channel.elicit_url(_page_message(op), url, elicitation)), form=False
            )
            await self._decision(page)
        finally:
            await self.approvals.close(page)
            if channel.completed is not None:
                await channel.completed(elicitation)

    async def _decision(self, page: ApprovalPage) -> None:
        decision = await self.approvals.wait(page)
        traces.event("page_decided", {"relatel.page.decision": decision or "none"})
        if decision is None:
            raise NoAnswer("declined", "The approval page was not answered in time; nothing was sent.")
        if decision != "approve":
            raise ToolError("declined", "The user declined on the approval page; nothing was sent.")

    async def _answer(self, asking: Awaitable[types.ElicitResult]) -> types.ElicitResult:
        try:
            with anyio.fail_after(self.policy.elicit_timeout_seconds):
                return await asking
        except TimeoutError:
            raise NoAnswer(
                "declined", f"No answer within {self.policy.elicit_timeout_seconds:g} s; nothing was sent."
            ) from None
        except MCPError as exc:
            raise ToolError(
                "declined", f"The client could not ask the user ({exc.error.message}); nothing was sent."
            ) from None

    @staticmethod
    def _accepted(answer: Any, *, form: bool) -> None:
        """A form's yes is "accept" with the box ticked; a URL's is "accept" (then the page decides)."""
        traces.event("answered", _answer_attributes(answer))
        if not isinstance(answer, types.ElicitResult) or answer.action != "accept":
            raise ToolError("declined", _not_confirmed(answer))
        if form and (answer.content or {}).get(CONFIRM_KEY) is not True:
            raise ToolError("declined", _UNTICKED)

    # ------------------------------------------------------------------ sealed tokens

    def _seal(
        self, purpose: str, op: Operation, args: Args, bound: _Binding, facts: Facts, **extra: Any
    ) -> str:
        return self.sealer.seal(
            {
                "purpose": purpose,
                "tool": op.name,
                "account": bound.account,
                "holder": bound.holder,
                **({"session": bound.session} if purpose == "preview" else {}),
                "args": digest(args.upstream_fields()),
                "facts": facts.shown,
                "expires": int(time.time()) + self.policy.token_ttl_seconds,
                "nonce": secrets.token_urlsafe(12),
                **extra,
            }
        )

    async def _redeem(
        self, purpose: str, token: str, op: Operation, args: Args, bound: _Binding, facts: Facts
    ) -> dict[str, Any]:
        payload = self.sealer.open(token)
        if payload is None or payload.get("purpose") != purpose:
            raise _refused(f"the {_SEALED[purpose]} is not valid (forged or damaged).")
        problems = {
            "tool": payload.get("tool") != op.name,
            "account": payload.get("account") != bound.account,
            "holder": payload.get("holder") != bound.holder,
            "session": purpose == "preview" and payload.get("session") != bound.session,
            "args": payload.get("args") != digest(args.upstream_fields()),
            "expires": payload["expires"] < time.time(),
        }
        for problem in (name for name, failed in problems.items() if failed):
            raise _refused(
                f"the {_SEALED[purpose]} cannot be used: {_unusable(problem, payload, op)}.",
                _ASK_AGAIN,
            )
        if not await self.store.use_once(str(payload.get("nonce")), float(payload["expires"])):
            raise _refused(f"the {_SEALED[purpose]} was already used; each confirms one call.", _ASK_AGAIN)
        if payload.get("facts") != facts.shown:
            raise _changed(_what_changed(payload, facts))
        return payload

    def _preview(self, op: Operation, args: Args, bound: _Binding, facts: Facts) -> ToolError:
        token = self._seal("preview", op, args, bound, facts)
        minutes = self.policy.token_ttl_seconds / 60
        return ToolError(
            "confirmation_required",
            "Not done yet: the user must confirm this first. Show the user exactly this and ask:\n\n"
            f"{facts.question}\n\nIf they say yes, call {op.name} again with the same arguments and "
            f'confirmation_token="{token}" (valid {minutes:g} minutes, for this one call). Nothing was sent.',
            hint="Never confirm on the user's behalf: only the user's explicit yes allows the second call.",
            extra={"confirmation": {"question": facts.question, "token": token, "summary": facts.summary}},
        )


async def _page_url(channel: Channel, page: ApprovalPage) -> str:
    assert channel.pages is not None
    return await channel.pages.url(page)


_SEALED = {"preview": "confirmation token", "elicit": "confirmation state"}  # by purpose, for messages
_UNUSABLE = {  # why a sealed token or state that opened cannot be used here, by the check that failed
    "tool": "it was issued for {tool}, not {op}",
    "account": "it was issued for another account",
    "holder": "it was issued to another client of this account",
    "session": "it was issued in another session; a confirmation token works only where it was given",
    "args": "it was issued for other arguments",
    "expires": "it has expired",
}


_ASK_AGAIN = "Ask again to get a new confirmation."


def _shown(number: str) -> str:
    """A number as the refusal names it."""
    return phones.display(number) or "that number"


def _not_confirmed(answer: Any) -> str:
    return f"The user did not confirm ({getattr(answer, 'action', 'no answer')}); nothing was sent."


_UNTICKED = "The user answered without ticking the confirmation; nothing was sent."


def _unusable(problem: str, payload: dict[str, Any], op: Operation) -> str:
    return _UNUSABLE[problem].format(tool=payload.get("tool"), op=op.name)


def _what_changed(payload: dict[str, Any], facts: Facts) -> str:
    """A request state carries the question it asked; a preview token (which the agent must copy
    back) only its digest, so the question it would now ask is shown instead."""
    asked = payload.get("question")
    return facts.changes_since(asked) if isinstance(asked, str) else f"it would now ask:\n{facts.question}"


def _answer_attributes(answer: Any) -> dict[str, Any]:
    """What a trace says of an answer (the decision is `_accepted`'s alone)."""
    elicited = answer if isinstance(answer, types.ElicitResult) else None
    confirmed = elicited is not None and (elicited.content or {}).get(CONFIRM_KEY) is True
    return {
        "relatel.answer.action": elicited.action if elicited else "none",
        "relatel.answer.confirmed": confirmed,
    }


def _page_message(op: Operation) -> str:
    return (
        f"relatel-mcp needs your approval to run {op.name}. Open the page to see exactly what it "
        "would do, and approve or decline it there."
    )


def _changed(how: str) -> ToolError:
    return _refused(
        f"what was confirmed has changed since the question was asked ({how}).",
        "Ask again, so that the user confirms what would be sent now.",
    )


def _refused(message: str, hint: str | None = None) -> ToolError:
    return ToolError("refused", f"Refused: {message} Nothing was sent.", hint=hint)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
