"""The gate every costly and destructive call passes before a request leaves: it fails closed.

In order: read-only mode, the operator's mode for the kind (deny / allow / confirm / elicit), the
kill switch, the destination allow-list and premium-rate block, the daily budget, and then a
human's yes through the best channel the client has:

1. elicitation: 2025-11-25 `elicitation/create` on the back-channel, or a 2026-07-28
   `InputRequiredResult` whose request state is sealed to this exact call;
2. a preview token, where the client cannot elicit and the mode is `confirm`: the first call
   returns the question and a sealed single-use token, the second call carries it;
3. otherwise a refusal that says how an operator can enable a channel.

A decline, a cancel, no answer in time, a broken channel, or a token that is forged, expired,
replayed, or for another tool, other arguments, another tenant or changed facts: nothing is sent.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.shared.exceptions import MCPError

from .. import phones
from ..catalog import Operation
from ..client import Tenant
from ..errors import ToolError
from ..models import Args
from .facts import Facts, Reader, resolve
from .seal import Sealer, digest
from .settings import Policy
from .store import Store

CONFIRM_KEY = "confirm"
CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {CONFIRM_KEY: {"type": "boolean", "title": "Yes, do it", "description": "Tick to confirm"}},
    "required": [CONFIRM_KEY],
}
Elicit = Callable[[str, dict[str, Any]], Awaitable[types.ElicitResult]]


@dataclass(frozen=True)
class Channel:
    """How this tools/call can reach a human."""

    modern: bool = False  # 2026-07-28: ask with InputRequiredResult rounds
    can_elicit: bool = False  # the client declared elicitation and (handshake era) can be sent requests
    elicit: Elicit | None = None  # handshake era: send elicitation/create and wait
    input_responses: dict[str, Any] | None = None
    request_state: str | None = None


@dataclass
class Approval:
    channel: str  # none | policy_allow | elicitation | preview_token | dry_run
    facts: Facts | None = None
    spent: tuple[str, str, int] | None = None  # (day, budget kind, amount)


class Gate:
    def __init__(self, policy: Policy, store: Store, sealer: Sealer, state_dir: Path) -> None:
        self.policy = policy
        self.store = store
        self.sealer = sealer
        self.kill_switch_file = state_dir / "KILL_SWITCH"

    def hides(self, op: Operation) -> bool:
        return self.policy.read_only and op.kind != "read"

    async def authorize(
        self, op: Operation, args: Args, tenant: Tenant, channel: Channel, token: str | None, read: Reader
    ) -> Approval | types.InputRequiredResult:
        if self.hides(op):
            raise _refused(f"{op.name} changes the account, and this server runs in read-only mode.")
        mode = self.policy.mode(op.kind)
        if mode is None:
            return Approval("none")
        if mode == "deny":
            raise _refused(f"the operator does not allow {op.kind} actions ({op.name}) on this server.")
        if op.kind == "costly" and self.killed():
            raise _refused(
                "the kill switch is on: every costly action is stopped.", "An operator turns it off."
            )
        facts = await resolve(op.operation, args, read, self.policy.prices)
        self._check_destinations(facts)
        self._check_budget(tenant, facts)
        if self.policy.dry_run:
            return Approval("dry_run", facts)
        if mode == "allow":
            return Approval("policy_allow", facts)
        if token is not None:
            self._redeem("preview", token, op, args, tenant, facts)
            return Approval("preview_token", facts)
        if channel.can_elicit:
            return await self._elicit(op, args, tenant, channel, facts)
        if mode == "confirm":
            raise self._preview(op, args, tenant, facts)
        raise _refused(
            f"{op.name} needs a human's confirmation and this client cannot ask (it does not support elicitation).",
            "Use a client with elicitation, or an operator can set this kind's policy to 'confirm' "
            "to allow a preview-and-token confirmation.",
        )

    # ------------------------------------------------------------------ checks

    def killed(self) -> bool:
        return (
            os.environ.get("RELATEL_MCP_KILL_SWITCH", "") not in ("", "0") or self.kill_switch_file.exists()
        )

    def _check_destinations(self, facts: Facts) -> None:
        for number in facts.destinations:
            if not number.startswith(self.policy.allow_prefixes):
                raise _refused(
                    f"+{number} is outside the allowed destinations ({', '.join('+' + p for p in self.policy.allow_prefixes)}).",
                    "An operator can widen [destinations] allow.",
                )
            if self.policy.block_premium_rate and phones.is_premium_rate(number):
                raise _refused(f"+{number} is a premium-rate number; calls and SMS to it are blocked.")

    def _check_budget(self, tenant: Tenant, facts: Facts) -> None:
        if facts.spend is None:
            return
        kind, amount = facts.spend
        limit = getattr(self.policy.budgets, kind)
        used = self.store.used(tenant.id, _today(), kind)
        if used + amount > limit:
            raise _refused(
                f"today's budget of {limit} {kind.replace('_', ' ')} would be exceeded ({used} used, {amount} more asked).",
                "The budget resets at midnight UTC; an operator can raise it in [budgets].",
            )

    def spend(self, tenant: Tenant, approval: Approval) -> None:
        """Take the budget for an approved call, atomically, just before it is sent."""
        if approval.facts is None or approval.facts.spend is None:
            return
        kind, amount = approval.facts.spend
        day = _today()
        if not self.store.spend(tenant.id, day, kind, amount, getattr(self.policy.budgets, kind)):
            raise _refused(f"today's budget of {kind.replace('_', ' ')} is used up.")
        approval.spent = (day, kind, amount)

    def refund(self, tenant: Tenant, approval: Approval) -> None:
        if approval.spent is not None:
            self.store.refund(tenant.id, *approval.spent)
            approval.spent = None

    # ------------------------------------------------------------------ elicitation

    async def _elicit(
        self, op: Operation, args: Args, tenant: Tenant, channel: Channel, facts: Facts
    ) -> Approval | types.InputRequiredResult:
        if channel.modern:
            answer = (channel.input_responses or {}).get(CONFIRM_KEY)
            if channel.request_state is None and answer is None:
                state = self._seal("elicit", op, args, tenant, facts)
                request = types.ElicitRequest(
                    params=types.ElicitRequestFormParams(
                        message=facts.question, requested_schema=CONFIRM_SCHEMA
                    )
                )
                return types.InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state=state)
            self._redeem("elicit", channel.request_state or "", op, args, tenant, facts)
        else:
            answer = await self._ask(channel, facts.question)
        if not isinstance(answer, types.ElicitResult) or answer.action != "accept":
            action = getattr(answer, "action", "no answer")
            raise ToolError("declined", f"The user did not confirm ({action}); nothing was sent.")
        if (answer.content or {}).get(CONFIRM_KEY) is not True:
            raise ToolError(
                "declined", "The user answered without ticking the confirmation; nothing was sent."
            )
        return Approval("elicitation", facts)

    async def _ask(self, channel: Channel, question: str) -> types.ElicitResult | None:
        assert channel.elicit is not None
        try:
            with anyio.fail_after(self.policy.elicit_timeout_seconds):
                return await channel.elicit(question, CONFIRM_SCHEMA)
        except TimeoutError:
            raise ToolError(
                "declined", f"No answer within {self.policy.elicit_timeout_seconds:g} s; nothing was sent."
            ) from None
        except MCPError as exc:
            raise ToolError(
                "declined", f"The client could not ask the user ({exc.error.message}); nothing was sent."
            ) from None

    # ------------------------------------------------------------------ sealed tokens

    def _seal(self, purpose: str, op: Operation, args: Args, tenant: Tenant, facts: Facts) -> str:
        return self.sealer.seal(
            {
                "purpose": purpose,
                "tool": op.name,
                "tenant": tenant.id,
                "args": digest(args.upstream_fields()),
                "facts": digest(facts.summary),
                "expires": int(time.time()) + self.policy.token_ttl_seconds,
                "nonce": secrets.token_urlsafe(12),
            }
        )

    def _redeem(
        self, purpose: str, token: str, op: Operation, args: Args, tenant: Tenant, facts: Facts
    ) -> None:
        what = "confirmation token" if purpose == "preview" else "confirmation state"
        payload = self.sealer.open(token)
        if payload is None or payload.get("purpose") != purpose:
            raise _refused(f"the {what} is not valid (forged or damaged).")
        problems = [
            (payload.get("tool") != op.name, f"it was issued for {payload.get('tool')}, not {op.name}"),
            (payload.get("tenant") != tenant.id, "it was issued for another account"),
            (payload.get("args") != digest(args.upstream_fields()), "it was issued for other arguments"),
            (payload.get("expires", 0) < time.time(), "it has expired"),
            (
                payload.get("facts") != digest(facts.summary),
                "what it confirmed has changed since (e.g. a group's members)",
            ),
        ]
        for failed, reason in problems:
            if failed:
                raise _refused(
                    f"the {what} cannot be used: {reason}.", "Ask again to get a new confirmation."
                )
        if not self.store.use_token(str(payload.get("nonce")), float(payload["expires"])):
            raise _refused(
                f"the {what} was already used; each confirms one call.",
                "Ask again to get a new confirmation.",
            )

    def _preview(self, op: Operation, args: Args, tenant: Tenant, facts: Facts) -> ToolError:
        token = self._seal("preview", op, args, tenant, facts)
        minutes = self.policy.token_ttl_seconds / 60
        return ToolError(
            "confirmation_required",
            "Not done yet: a human must confirm this first. Show the user exactly this and ask:\n\n"
            f"{facts.question}\n\nIf they say yes, call {op.name} again with the same arguments and "
            f'confirmation_token="{token}" (valid {minutes:g} minutes, for this one call). Nothing was sent.',
            hint="Never confirm on the user's behalf: only a human's explicit yes allows the second call.",
            extra={"confirmation": {"question": facts.question, "token": token, "summary": facts.summary}},
        )


def _refused(message: str, hint: str | None = None) -> ToolError:
    return ToolError("refused", f"Refused: {message} Nothing was sent.", hint=hint)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
