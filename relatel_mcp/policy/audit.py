"""One append-only audit record per costly or destructive attempt, whatever became of it.

A send is written twice (a call sent as several requests, each of them): its intent (`sending`) just before the request leaves, and its outcome
after, naming the intent. A process killed in between leaves the intent, which reads as
`outcome_unknown` ("sent; the server stopped before it learned the outcome"), never nothing. If
the intent cannot be written, nothing is sent; if the outcome cannot, the call's result stands
(it happened) and the intent says so.

Decisions: sent (and its upstream status and id), failed (sent, but the call failed),
outcome_unknown (sent, and the answer was lost), declined (a
human said no, cancelled or did not answer), refused (policy, budget, destination, kill switch,
read-only or a bad token), preview (a preview token was issued), asked (a 2026-07-28 question went
out), dry_run, invalid (the arguments were wrong). Records are kept per account (a pseudonym of
company and employee; before the account is known, of the token); phone numbers are kept; the
confirmation token is never in the arguments (it is taken out before they get here), and any
credential the server knows is redacted from them, wherever an agent pasted it.

Retention (`RELATEL_MCP_AUDIT_RETENTION_DAYS`; unset or 0 keeps every record): `prune` removes the
attempts older than that many days, and is an attempt of its own, written the same two ways:
its intent (`pruning`, naming the cutoff) before anything is removed, which is what lets the
database remove anything (store/schema.py, version 6), and its outcome after (`pruned`, and how
many). Its records age like every other. An intent and its outcome go together, by the newer of
the two; an intent whose outcome never came was a send the server stopped in the middle of
(`outcome_unknown`): no send is out for as long as a day, so such an intent is never one whose
outcome may still come, and it goes with the rest of its day.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import mcp.types as types

from ..core import traces
from ..core.catalog import Operation
from ..core.errors import ToolError, redact
from ..store import AuditFilter, Store, StoreUnavailable, stamp

log = logging.getLogger(__name__)
MAX_ARGUMENTS = 4000  # characters of JSON; invalid calls can carry anything
_DECISIONS = {
    "invalid_argument": "invalid",
    "refused": "refused",
    "declined": "declined",
    "confirmation_required": "preview",
    "outcome_unknown": "outcome_unknown",
}
# Every decision a record can show (`outcome_unknown` stands for an intent without its outcome).
DECISIONS = (
    "sent", "failed", "outcome_unknown", "declined", "refused", "preview", "asked", "dry_run", "invalid",
    "pruned", "pruning",
)  # fmt: skip
RETENTION_TOOL = "audit_retention"  # the records of a prune: never a tool of the catalogue
SERVER = "server"  # their account: the server's own, not anyone's at Relatel
HOUR = 3600.0


class Audit:
    def __init__(
        self,
        store: Store,
        op: Operation,
        account: str,
        arguments: dict[str, Any],
        secrets: tuple[object, ...],
    ) -> None:
        self.store, self.op, self.account, self.secrets = store, op, account, secrets
        self.arguments: dict[str, Any] = arguments  # raw until validated, then as sent
        self.channel: str | None = None
        self.sent = False
        self.intent: int | None = None  # the id of the record written just before sending
        self.decision: str | None = None  # what became of the call, for its log line too
        self.status: int | None = None

    def part(self, **more: Any) -> Audit:
        """The record of one request of a call that is sent as several (an SMS to each person
        shown): the call's arguments and whom this one is for, its own intent and outcome."""
        part = Audit(self.store, self.op, self.account, {**self.arguments, **more}, self.secrets)
        part.channel = self.channel
        return part

    async def intend(self) -> None:
        """Just before the request leaves: its record (StoreUnavailable means it must not leave)."""
        if self.op.gated:
            with traces.span("audit", {"relatel.audit.decision": "sending"}):
                self.intent = await self.store.audit(self._record("sending", None, None, None))
        self.sent = True

    async def record(
        self, decision: str, channel: str | None = None, status: int | None = None, detail: Any = None
    ) -> None:
        """A whole attempt that sent nothing, or the outcome of a send."""
        self.decision, self.status = decision, status
        if not self.op.gated:
            return
        record = self._record(decision, channel, status, detail)
        with traces.span("audit", {"relatel.audit.decision": decision}):
            if self.intent is None:
                await self.store.audit(record)
                return
            try:
                await self.store.audit(record, intent_id=self.intent)
            except StoreUnavailable as exc:  # the intent stands: "sent, outcome unknown"
                log.warning("the audit could not record the outcome of record %s: %s", self.intent, exc)

    def _record(self, decision: str, channel: str | None, status: int | None, detail: Any) -> dict[str, Any]:
        outcome = None if detail is None else str(detail)
        arguments = json.loads(redact(json.dumps(self.arguments, default=str), self.secrets))
        return {
            "at": stamp(datetime.now(UTC)),
            "account": self.account,
            "tool": self.op.name,
            "kind": self.op.kind,
            "arguments": _bounded(arguments),
            "channel": channel or self.channel,
            "decision": decision,
            "status": status,
            "upstream_id": outcome if decision == "sent" else None,
            "detail": outcome[:500] if outcome is not None and decision != "sent" else None,
        }


def decision_for(error: ToolError, sent: bool) -> str:
    return _DECISIONS.get(error.code) or ("failed" if sent else "refused")


def upstream_id(result: types.CallToolResult) -> str | None:
    """What identifies the upstream effect: an id, a count of sent messages, or the API's message."""
    data = result.structured_content
    if not isinstance(data, dict):
        return None
    for value in (data, *[v for v in data.values() if isinstance(v, dict)]):
        for key in ("id", "sent", "message"):
            if key in value:
                return f"{key}={value[key]}"
    return None


def _bounded(arguments: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(arguments, ensure_ascii=False, default=str)
    return arguments if len(text) <= MAX_ARGUMENTS else {"_truncated": text[:MAX_ARGUMENTS]}


@dataclass(frozen=True)
class Pruned:
    older_than: str  # the cutoff, a stamp
    records: int  # attempts removed (an intent with its outcome is one)


async def prune(store: Store, days: int, by: str, now: datetime | None = None) -> Pruned | None:
    """Remove the attempts older than `days` days, recorded as a prune (`by`: who asked, the
    record's channel); None when none is that old, and then nothing is written."""
    now = now or datetime.now(UTC)
    cutoff = stamp(now - timedelta(days=days))
    if not await store.prunable(cutoff):
        return None
    record: dict[str, Any] = {
        "at": stamp(now),
        "account": SERVER,
        "tool": RETENTION_TOOL,
        "kind": "destructive",
        "arguments": {"older_than": cutoff, "retention_days": days},
        "channel": by,
        "decision": "pruning",
    }
    intent = await store.audit(record)
    removed = await store.prune_audit(cutoff, intent)
    detail = f"{removed} records older than {cutoff} removed"
    await store.audit({**record, "decision": "pruned", "detail": detail}, intent_id=intent)
    return Pruned(cutoff, removed)


async def prune_due(
    store: Store, days: int, every: float = HOUR, now: datetime | None = None
) -> Pruned | None:
    """A serving replica's prune: none while retention is off, nor when a prune was recorded
    within `every` seconds, by any replica sharing the store or `relatel-mcp audit --prune`."""
    if days <= 0:
        return None
    now = now or datetime.now(UTC)
    last = await store.recent(1, matching=AuditFilter(tools=(RETENTION_TOOL,)))
    if last and last[0]["at"] > stamp(now - timedelta(seconds=every)):
        return None
    return await prune(store, days, "server", now)
