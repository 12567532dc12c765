"""One tool call, as short named steps: validate → build the request → gate → send → shape → audit.

Every tool runs through `Pipeline.call`; nothing here knows which tool it is beyond its catalogue
entry, and nothing knows whether the upstream is Relatel or the sandbox.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import mcp.types as types
from pydantic import ValidationError

from . import logs
from .core import errors, traces
from .core.catalog import DETAIL, DETAILS, INLINE, Operation, named
from .core.errors import ToolError
from .core.metrics import NO_METRICS, Metrics
from .core.models import Args
from .core.request import UpstreamRequest
from .core.results import MAX_AUDIO_BYTES, compact_json, json_body, recording, shape
from .policy import Approval, Channel, Gate
from .policy.audit import Audit, decision_for, upstream_id
from .policy.facts import Reader
from .resources import RECORDING
from .store import StoreUnavailable
from .upstream.accounts import Accounts, token_key
from .upstream.client import RelatelClient, Tenant

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        client: RelatelClient,
        gate: Gate,
        accounts: Accounts,
        *,
        max_result_bytes: int = 40_000,
        secrets: tuple[str, ...] = (),
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.client = client
        self.gate = gate
        self.accounts = accounts
        self.max_result_bytes = max_result_bytes
        self.secrets = secrets  # the server's own credentials: kept out of results and the audit
        self.metrics = metrics  # each call by its decision; each lost answer

    async def call(
        self, op: Operation, arguments: dict[str, Any] | None, tenant: Tenant, channel: Channel
    ) -> types.CallToolResult | types.InputRequiredResult:
        started = time.monotonic()
        arguments = dict(arguments or {})
        local = Local.taken(op, arguments, preview=self.gate.policy.offers_preview(op.kind))
        secrets = (*self.secrets, tenant.token, local.token)
        audit = Audit(
            self.gate.store, op, self.accounts.last_known(tenant) or token_key(tenant), arguments, secrets
        )
        with traces.tool_call(op, human=channel.human, modern=channel.modern) as span:
            try:
                result = await self._call(op, arguments, local, tenant, channel, audit, secrets)
            except StoreUnavailable as exc:  # before anything was sent: the gate fails closed
                audit.decision = "unavailable"
                result = error_result(errors.store_unavailable(str(exc)), secrets=secrets)
            finally:  # never the arguments: any of them could hold a credential an agent pasted
                logs.event(
                    logs.calls,
                    "tool_call",
                    tool=op.name,
                    account=audit.account,
                    decision=audit.decision or "error",
                    status=audit.status,
                    duration_ms=logs.since(started),
                )
                self.metrics.tool_call(op.name, audit.decision or "error")
            traces.called(span, audit.decision or "error", audit.channel, audit.status, error_code(result))
            return result

    async def _call(
        self,
        op: Operation,
        arguments: dict[str, Any],
        local: Local,
        tenant: Tenant,
        channel: Channel,
        audit: Audit,
        secrets: tuple[object, ...],
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            with traces.span("validate"):
                args = validate(op, arguments, local)
            audit.arguments = args.upstream_fields()
            request = op.request(args)
            with traces.gate(self.gate.policy.mode(op.kind)) if op.gated else traces.NO_SPAN as gating:
                account = await self.accounts.require(tenant) if op.gated else ""
                audit.account = account or audit.account
                read = self._reader(op, tenant)
                approval = await self.gate.authorize(
                    op, args, account, channel, local.token, read, holder=tenant.id
                )
                traces.gated(
                    gating, None if isinstance(approval, types.InputRequiredResult) else approval.channel
                )
            if isinstance(approval, types.InputRequiredResult):
                await audit.record("asked", "elicitation")
                return approval
            audit.channel = approval.channel
            if approval.channel == "dry_run":
                await audit.record("dry_run", detail=approval.facts.question if approval.facts else None)
                return dry_run_result(request, approval)
            if approval.facts is not None and approval.facts.deliveries:
                return redacted(await self._deliver_each(op, tenant, account, approval, audit), secrets)
            if op.media == "audio/mpeg":
                return redacted(await self._recording(op, args, tenant, local.inline is True, audit), secrets)
            return redacted(
                await self._deliver(op, request, tenant, account, approval, audit, local.detail), secrets
            )
        except ToolError as error:
            return error_result(await self._failed(op, error, tenant, audit), secrets=secrets)

    async def _deliver(
        self,
        op: Operation,
        request: UpstreamRequest,
        tenant: Tenant,
        account: str,
        approval: Approval,
        audit: Audit,
        detail: Any = None,
    ) -> types.CallToolResult:
        """Send one request once: its budget spent and its intent recorded first, its outcome after."""
        await self.gate.spend(op, account, approval)
        await audit.intend()
        response = await self._send(op, request, tenant, account, approval)
        with traces.span("shape"):
            result = shape(op, response, max_bytes=self.max_result_bytes, full=detail == "full")
        await audit.record("sent", status=response.status_code, detail=upstream_id(result))
        return result

    async def _recording(
        self, op: Operation, args: Args, tenant: Tenant, inline: bool, audit: Audit
    ) -> types.CallToolResult:
        """A voicemail's recording: what it is (read first: who called, when, how long) and a link
        to it; its bytes are read, within `MAX_AUDIO_BYTES`, to say how big it is."""
        about = await self._reader(op, tenant)(named("getVoiceMail").request(args).path)
        if not isinstance(about, dict):
            raise ToolError(
                "not_found", f"Voicemail {args.upstream_fields().get('id')} was not found.", status=404
            )
        response = await self.client.send(
            op.request(args), tenant, idempotent=True, max_bytes=MAX_AUDIO_BYTES
        )
        with traces.span("shape"):
            result = recording(
                op, response, about, RECORDING.uri(args.upstream_fields()["id"]), inline=inline
            )
        await audit.record("sent", status=response.status_code)  # a read: its log line only
        return result

    async def _deliver_each(
        self, op: Operation, tenant: Tenant, account: str, approval: Approval, audit: Audit
    ) -> types.CallToolResult:
        """A call approved as several requests (an SMS to each person shown), sent one by one, each
        with its own budget share and audit record; the first that fails stops the rest. The
        result says who got it, who did not, and for whom it is unknown."""
        assert approval.facts is not None
        outcomes: list[dict[str, Any]] = []
        failure: ToolError | None = None
        for delivery in approval.facts.deliveries:
            outcome = "not_sent"
            if failure is None:
                part = audit.part(recipient=delivery.to)
                own = Approval(approval.channel, replace(approval.facts, spend=delivery.spend, deliveries=()))
                try:
                    await self._deliver(op, delivery.request, tenant, account, own, part)
                    outcome = "sent"
                except StoreUnavailable as exc:  # before it left: its intent could not be recorded
                    failure, outcome = errors.store_unavailable(str(exc)), "unavailable"
                except ToolError as error:
                    failure = await self._failed(op, error, tenant, part)
                    outcome = part.decision or "failed"
                audit.decision, audit.status = outcome, part.status  # for the log line: the last send
            outcomes.append({"id": delivery.to["id"], "outcome": outcome})
        data = {"sent": sum(o["outcome"] == "sent" for o in outcomes), "recipients": outcomes}
        if failure is None:
            return types.CallToolResult(
                content=[types.TextContent(text=compact_json(data))], structured_content=data
            )
        return error_result(_stopped(failure, data), secrets=())  # redacted by the caller

    async def _failed(self, op: Operation, error: ToolError, tenant: Tenant, audit: Audit) -> ToolError:
        """A failure as the agent is told it, recorded: a lost answer to a send is never repeated."""
        if error.code == "unauthorized":
            await self.accounts.refused(tenant)
        if audit.sent and not op.idempotent and error.code in errors.AMBIGUOUS:
            error = errors.outcome_unknown(op, error)  # never repeated: say so, and how to check
            self.metrics.outcome_unknown(op.name)
        await audit.record(decision_for(error, audit.sent), status=error.status, detail=error.message)
        return error

    async def _send(
        self, op: Operation, request: UpstreamRequest, tenant: Tenant, account: str, approval: Approval
    ) -> httpx2.Response:
        try:
            response = await self.client.send(
                request, tenant, idempotent=op.idempotent, expect_json=op.media == "application/json"
            )
        except ToolError as error:
            if error.code == "unreachable":  # never arrived: nothing happened, nothing spent
                await self._refund(account, approval)
            raise
        if 400 <= response.status_code < 500:
            await self._refund(account, approval)  # refused upstream: nothing happened, nothing spent
        return response

    async def _refund(self, account: str, approval: Approval) -> None:
        try:
            await self.gate.refund(account, approval)
        except StoreUnavailable:  # the budget stays spent: the safe side
            log.warning("could not give back a budget: the store is unavailable")

    def _reader(self, op: Operation, tenant: Tenant) -> Reader:
        """GETs for resolving a gated call's facts, as the same tenant: JSON, or None on 404."""

        async def read(path: str) -> Any:
            response = await self.client.send(
                UpstreamRequest("GET", path), tenant, idempotent=True, expect_json=True
            )
            if response.status_code == 404:
                return None
            if not response.is_success:
                raise errors.from_response(op, response)
            return json_body(response)

        return read


TOKEN_ARGUMENT = "confirmation_token"
NOT_REACHED = ("not_sent", "refused", "unavailable", "failed")  # outcomes of a send nobody got


def _stopped(failure: ToolError, data: dict[str, Any]) -> ToolError:
    """The failure that stopped a call sent as several requests, with who got it and who did not."""
    outcomes = data["recipients"]
    unsent = ", ".join(str(o["id"]) for o in outcomes if o["outcome"] in NOT_REACHED)
    more = f"Those not sent to can be texted with send_employee_sms (ids {unsent}), each asked again."
    return replace(
        failure,
        message=f"Sent to {data['sent']} of {len(outcomes)} people, one by one, then stopped: {failure.message}",
        hint=" ".join(filter(None, [failure.hint, more if unsent else None])) or None,
        extra=data,
    )


def dry_run_result(request: UpstreamRequest, approval: Approval) -> types.CallToolResult:
    data: dict[str, Any] = {"dry_run": True, "sent": False}
    if approval.facts is not None and approval.facts.deliveries:
        data["requests"] = [delivery.request.describe() for delivery in approval.facts.deliveries]
    else:
        data["request"] = request.describe()
    if approval.facts is not None:
        data["would_ask"] = approval.facts.question
    return types.CallToolResult(
        content=[types.TextContent(text="Dry run, nothing was sent. " + compact_json(data))],
        structured_content=data,
    )


@dataclass(frozen=True)
class Local:
    """The arguments that are this server's, not the contract's: never sent to Relatel."""

    token: Any = None  # confirmation_token, where the policy offers previews
    detail: Any = None  # concise or full, for a list or get tool
    inline: Any = None  # the audio in the result too, for a recording

    @classmethod
    def taken(cls, op: Operation, arguments: dict[str, Any], *, preview: bool) -> Local:
        """This tool's local arguments, taken out of `arguments`."""
        return cls(
            token=arguments.pop(TOKEN_ARGUMENT, None) if preview else None,
            detail=arguments.pop(DETAIL, None) if op.cut is not None else None,
            inline=arguments.pop(INLINE, None) if op.media == "audio/mpeg" else None,
        )


def validate(op: Operation, arguments: dict[str, Any] | None, local: Local = Local()) -> Args:
    token, detail = local.token, local.detail
    if local.inline is not None and not isinstance(local.inline, bool):
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {INLINE} must be true or false. Nothing was sent.",
            field=INLINE,
        )
    if token is not None and not isinstance(token, str):
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {TOKEN_ARGUMENT} must be a string.",
            field=TOKEN_ARGUMENT,
        )
    if detail is not None and detail not in DETAILS:
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {DETAIL} must be one of {', '.join(DETAILS)}. Nothing was sent.",
            field=DETAIL,
        )
    arguments = arguments or {}
    try:
        return op.args.model_validate(arguments)
    except ValidationError as exc:
        found = exc.errors(include_url=False, include_input=False)
        unknown = [str(e["loc"][0]) for e in found if e["type"] == "extra_forbidden" and e["loc"]]
        problems = [_problem(e, _meant(op, unknown, arguments)) for e in found]
        fields = [field for field, _ in problems if field]
        detail = "; ".join(f"{field}: {text}" if field else text for field, text in problems)
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {detail}. Nothing was sent.",
            field=fields[0] if fields else None,
            hint="Fix the arguments to match the tool's input schema and call again.",
        ) from None


def _problem(error: Any, meant: dict[str, str]) -> tuple[str | None, str]:
    location = ".".join(str(part) for part in error["loc"])
    text = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        guess = meant.get(location)
        text = f"unknown argument (did you mean {guess}?)" if guess else "unknown argument"
    return location or None, text


def _meant(op: Operation, unknown: list[str], arguments: dict[str, Any]) -> dict[str, str]:
    """The argument each unknown one most likely stands for: a close spelling among those not
    given (`limt`), else, for a lone unknown, the one required argument missing (`text` → `body`)."""
    import difflib  # only for a mistyped argument

    fields = op.args.model_fields
    free = [name for name in fields if name not in arguments]
    missing = [name for name in free if fields[name].is_required()]
    meant = {}
    for name in unknown:
        close = difflib.get_close_matches(name, free, n=1)
        if close or (len(unknown) == 1 and len(missing) == 1):
            meant[name] = (close or missing)[0]
    return meant


def error_code(result: types.CallToolResult | types.InputRequiredResult) -> str | None:
    """An error result's code (the error contract's), else None."""
    if not isinstance(result, types.CallToolResult) or not result.is_error:
        return None
    error = (result.structured_content or {}).get("error")
    return error.get("code") if isinstance(error, dict) else None


def error_result(error: ToolError, *, secrets: tuple[object, ...]) -> types.CallToolResult:
    result = types.CallToolResult(
        content=[types.TextContent(text=error.text())], structured_content=error.payload(), is_error=True
    )
    return redacted(result, secrets)


def redacted(result: types.CallToolResult, secrets: tuple[object, ...]) -> types.CallToolResult:
    """The result without any credential the server knows (an agent may paste one anywhere)."""
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    structured = json.dumps(result.structured_content, ensure_ascii=False)
    if not any(errors.redact(text, secrets) != text for text in (*texts, structured)):
        return result
    return result.model_copy(
        update={
            "content": [
                c.model_copy(update={"text": errors.redact(c.text, secrets)})
                if isinstance(c, types.TextContent)
                else c
                for c in result.content
            ],
            "structured_content": json.loads(errors.redact(structured, secrets)),
        }
    )
