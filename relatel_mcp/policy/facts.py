"""What a costly or destructive call would really do, resolved from the account before asking.

The confirmation question is composed from these facts, never from the model's words: whose
phone rings first, who is called (and the contact's name), which people an SMS reaches (a group
expanded to its members) with the text and its segments, which subscription an order changes,
and what a delete removes. The same facts give the budget to spend, the numbers to check against
the destination allow-list and the estimated cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import phones
from ..errors import ToolError
from ..models import Args
from ..sanitize import clean_text
from ..sms import sms_segments
from .settings import Prices

Reader = Callable[[str], Awaitable[Any]]  # GET a path: its JSON body, or None on 404


@dataclass(frozen=True)
class Facts:
    question: str
    summary: dict[str, Any]
    destinations: tuple[str, ...] = ()
    spend: tuple[str, int] | None = None  # (budget kind, amount)
    cost_dkk: float | None = None


@dataclass
class _Draft:
    lines: list[str]
    summary: dict[str, Any]
    destinations: list[str] = field(default_factory=list)
    spend: tuple[str, int] | None = None
    cost_dkk: float | None = None


async def resolve(operation: str, args: Args, read: Reader, prices: Prices) -> Facts:
    draft = await RESOLVERS[operation](args, read, prices)
    if draft.cost_dkk is not None:
        draft.lines.append(f"Estimated cost: {draft.cost_dkk:.2f} DKK.")
    return Facts(
        "\n".join(draft.lines), draft.summary, tuple(draft.destinations), draft.spend, draft.cost_dkk
    )


def human_number(number: str | None) -> str:
    return phones.display(number) or "no number"


def _name(value: Any) -> str:
    return clean_text(str(value))[:120] if value else "unnamed"


def _excerpt(text: str | None, limit: int = 80) -> str:
    text = " ".join(clean_text(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _must(read: Reader, path: str, thing: str) -> Any:
    found = await read(path)
    if found is None:
        raise ToolError("not_found", f"{thing} does not exist; nothing was sent.", 404)
    return found


def _cost(price: float | None, units: int) -> float | None:
    return None if price is None else round(price * units, 2)


# ------------------------------------------------------------------------------- calls and SMS


async def _call(args: Any, read: Reader, prices: Prices) -> _Draft:
    me = (await read("/api/v2/employee"))["employee"]
    contact = await read(f"/api/v2/contacts/by_number/{args.to_number}")
    callee = human_number(args.to_number)
    if contact:
        callee += f" ({_name(contact['contact'].get('name'))})"
    lines = [
        f"Place a real phone call to {callee}?",
        f"Your phone rings first: {_name(me.get('name'))} ({human_number(me.get('number'))}). "
        f"When you answer, {callee} is called.",
    ]
    if args.restrict_to:
        lines.append(
            f"Rings only on: {'the web phone' if args.restrict_to == 'web_call' else 'your mobile'}."
        )
    summary: dict[str, Any] = {
        "caller": me.get("name"),
        "to": args.to_number,
        "contact": contact and contact["contact"].get("name"),
    }
    if args.cloak_reception_id is not None:
        reception = await _must(
            read, f"/api/v2/receptions/{args.cloak_reception_id}", f"Reception {args.cloak_reception_id}"
        )
        shown = reception.get("phone_number", {}).get("number")
        lines.append(f"Caller ID shown: {_name(reception.get('name'))} ({human_number(shown)}).")
        summary["caller_id"] = shown
    return _Draft(lines, summary, [args.to_number], ("calls", 1), _cost(prices.call, 1))


async def _sms(recipients: list[dict[str, Any]], body: str, prices: Prices) -> _Draft:
    if missing := [r for r in recipients if not r.get("number")]:
        raise ToolError("refused", f"{_name(missing[0].get('name'))} has no phone number; nothing was sent.")
    info = sms_segments(body)
    total = info.segments * len(recipients)
    people = "1 person" if len(recipients) == 1 else f"{len(recipients)} people"
    lines = [f"Send a paid SMS to {people}?"]
    lines += [f"  {_name(r.get('name'))}, {human_number(r['number'])}" for r in recipients]
    lines.append(
        f"Text ({info.encoding}, {info.segments} segment{'s' * (info.segments != 1)} each): {body!r}"
    )
    lines.append(f"{total} segment{'s' * (total != 1)} in total.")
    summary = {
        "recipients": [{"name": r.get("name"), "number": r["number"]} for r in recipients],
        "text": body,
        "encoding": info.encoding,
        "segments_per_recipient": info.segments,
        "total_segments": total,
    }
    return _Draft(
        lines,
        summary,
        [r["number"] for r in recipients],
        ("sms_segments", total),
        _cost(prices.sms_segment, total),
    )


async def _employee_sms(args: Any, read: Reader, prices: Prices) -> _Draft:
    employee = (await _must(read, f"/api/v2/employees/{args.id}", f"Employee {args.id}"))["employee"]
    return await _sms([employee], args.body, prices)


async def _group_sms(args: Any, read: Reader, prices: Prices) -> _Draft:
    group = await _must(
        read, f"/api/v2/employee_groups/{args.employee_group_id}", f"Employee group {args.employee_group_id}"
    )
    members = set(group.get("employee_ids") or [])
    employees = (await read("/api/v2/employees"))["employees"]
    recipients = [e for e in employees if e.get("id") in members]
    if not recipients:
        raise ToolError(
            "refused", f"Employee group {_name(group.get('name'))} has no members; nothing was sent."
        )
    draft = await _sms(recipients, args.body, prices)
    draft.lines[0] = (
        f"Send a paid SMS to every member of {_name(group.get('name'))} ({len(recipients)} people)?"
    )
    draft.summary["group"] = group.get("name")
    return draft


# ------------------------------------------------------------------------------- orders


async def _activation(args: Any, read: Reader, prices: Prices) -> _Draft:
    lines = [
        "Order a new paid M2M subscription?",
        f"Product: {args.product_name}",
        f"SIM card (ICC): {args.icc_id}",
    ]
    if args.description:
        lines.append(f"Description: {args.description}")
    if args.overuse_limit_dkk is not None:
        lines.append(f"Overuse limit: {args.overuse_limit_dkk} DKK a month")
    summary = {"product": args.product_name, "icc_id": args.icc_id}
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


async def _cancellation(args: Any, read: Reader, prices: Prices) -> _Draft:
    when = f"on {args.cancel_on.isoformat()}" if args.cancel_on else "as soon as possible"
    if args.subscription_id is not None:
        sub = await _must(
            read, f"/api/v2/m2m/subscriptions/{args.subscription_id}", f"Subscription {args.subscription_id}"
        )
        what = (
            f"subscription {sub.get('id')} ({_name(sub.get('description'))}, {sub.get('product_name')}, "
            f"SIM {sub.get('icc_id')}, now {sub.get('state')})"
        )
    else:
        what = f"the subscription on {human_number(args.phone_number)}"
    lines = [f"Cancel {what} {when}?", "This ends the subscription; it cannot be undone here."]
    summary = {"subscription_id": args.subscription_id, "phone_number": args.phone_number, "when": when}
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


async def _product_change(args: Any, read: Reader, prices: Prices) -> _Draft:
    lines = [f"Change the product of M2M number {human_number(args.phone_number)} to {args.product_name}?"]
    summary = {"phone_number": args.phone_number, "product": args.product_name}
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


# ------------------------------------------------------------------------------- deletes


async def _delete_contact(args: Any, read: Reader, prices: Prices) -> _Draft:
    contact = (await _must(read, f"/api/v2/contacts/{args.id}", f"Contact {args.id}"))["contact"]
    comments = (await read(f"/api/v2/contacts/{args.id}/comments") or {}).get("comments", [])
    lines = [
        f"Delete the contact {_name(contact.get('name'))} ({human_number(contact.get('number'))}) "
        f"and its {len(comments)} comment{'s' * (len(comments) != 1)}, for everyone in the company?",
        "This cannot be undone.",
    ]
    return _Draft(lines, {"contact": contact.get("name"), "comments": len(comments)})


async def _delete_comment(args: Any, read: Reader, prices: Prices) -> _Draft:
    contact = (await _must(read, f"/api/v2/contacts/{args.contact_id}", f"Contact {args.contact_id}"))[
        "contact"
    ]
    comments = (await read(f"/api/v2/contacts/{args.contact_id}/comments") or {}).get("comments", [])
    comment = next((c for c in comments if c.get("id") == args.id), None)
    if comment is None:
        raise ToolError(
            "not_found",
            f"Comment {args.id} on contact {args.contact_id} does not exist; nothing was sent.",
            404,
        )
    lines = [
        f'Delete this comment on {_name(contact.get("name"))}: "{_excerpt(comment.get("body"))}"?',
        "This cannot be undone.",
    ]
    return _Draft(lines, {"contact": contact.get("name"), "comment": _excerpt(comment.get("body"))})


async def _delete_voicemail(args: Any, read: Reader, prices: Prices) -> _Draft:
    vm = await _must(read, f"/api/v2/voice_mails/{args.id}", f"Voicemail {args.id}")
    caller = human_number(vm.get("from_number"))
    if vm.get("from_contact"):
        caller += f" ({_name(vm['from_contact'].get('name'))})"
    lines = [
        f"Delete the voicemail from {caller}, left {vm.get('created_at')} ({vm.get('duration')} s), and its recording?",
        "This cannot be undone.",
    ]
    return _Draft(lines, {"from": vm.get("from_number"), "created_at": vm.get("created_at")})


async def _delete_employee(args: Any, read: Reader, prices: Prices) -> _Draft:
    employee = (await _must(read, f"/api/v2/employees/{args.id}", f"Employee {args.id}"))["employee"]
    lines = [
        f"Delete the employee {_name(employee.get('name'))} ({human_number(employee.get('number'))}) from the company?",
        "They lose access and stop receiving calls. This cannot be undone here.",
    ]
    return _Draft(lines, {"employee": employee.get("name")})


async def _leave_group(args: Any, read: Reader, prices: Prices) -> _Draft:
    group = await _must(
        read, f"/api/v2/employee_groups/{args.employee_group_id}", f"Employee group {args.employee_group_id}"
    )
    lines = [f"Leave the employee group {_name(group.get('name'))}? Its calls stop ringing your phone."]
    return _Draft(lines, {"group": group.get("name")})


RESOLVERS: dict[str, Callable[[Any, Reader, Prices], Awaitable[_Draft]]] = {
    "initiateCall": _call,
    "sendEmployeeMessage": _employee_sms,
    "sendEmployeeGroupMessage": _group_sms,
    "createM2MActivationOrder": _activation,
    "createM2MCancellationOrder": _cancellation,
    "createSubscriptionCancellationOrder": _cancellation,
    "createM2MProductChangeOrder": _product_change,
    "deleteContact": _delete_contact,
    "deleteContactComment": _delete_comment,
    "deleteVoiceMail": _delete_voicemail,
    "deleteEmployee": _delete_employee,
    "leaveEmployeeGroup": _leave_group,
}
