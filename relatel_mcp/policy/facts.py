"""What a costly or destructive call would really do, resolved from the account before asking.

The confirmation question is the server's own sentences about facts it resolved itself: whose
phone rings first, who is called, which people an SMS reaches (a group expanded to its members)
with the text and its segments, which subscription an order changes, what a delete removes.
Every value that came from the agent's arguments or from the account (a contact's name, a
product) appears `quoted`: on one line, in «», cleaned, capped, and said to be what it is. So no
value can add a line that reads as the server's ("Estimated cost: 0.00 DKK", "already approved").

Text that is sent (an SMS, a product) is shown `verbatim`: whole, as it is sent, and never cut;
the argument models have already taken out every invisible character (and the question says so).

The same facts give the budget to spend, the numbers to check against the destination
allow-list, and `shown`: a digest of exactly what the human is shown, compared again after the
yes, just before sending. A group SMS also gives its `deliveries`: one SMS to each person shown,
sent one by one (Relatel's group endpoint sends to whoever is in the group when it is called, which
may be someone who joined after the question).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..core import catalog, phones, traces
from ..core.errors import ToolError
from ..core.models import Args
from ..core.request import UpstreamRequest
from ..core.sanitize import clean_data, quoted, verbatim
from ..core.sms import sms_segments
from .rules import Prices
from .seal import digest

Reader = Callable[[str], Awaitable[Any]]  # GET a path: its JSON body, or None on 404


@dataclass(frozen=True)
class Delivery:
    """One of the requests a call is sent as, where it is sent as several: an SMS to one person."""

    request: UpstreamRequest
    to: dict[str, Any]  # who, as the human was shown: id, name, number
    spend: tuple[str, int]  # its share of the budget


@dataclass(frozen=True)
class Facts:
    question: str
    summary: dict[str, Any]
    destinations: tuple[str, ...] = ()
    spend: tuple[str, int] | None = None  # (budget kind, amount)
    cost_dkk: float | None = None
    deliveries: tuple[Delivery, ...] = ()  # none: the call is sent as its own one request

    @property
    def shown(self) -> str:
        """What the human sees, as a digest: equal digests mean an unchanged question."""
        return digest({"question": self.question, "summary": self.summary})

    def changes_since(self, question: str) -> str:
        """The lines of the question that differ from an earlier one, for saying what changed."""
        old, new = question.splitlines(), self.question.splitlines()
        parts = [f"was: {line.strip()}" for line in old if line not in new]
        parts += [f"now: {line.strip()}" for line in new if line not in old]
        return "; ".join(parts) or "the details behind the question changed"


@dataclass
class _Draft:
    lines: list[str]
    summary: dict[str, Any]
    destinations: list[str] = field(default_factory=list)
    spend: tuple[str, int] | None = None
    cost_dkk: float | None = None
    deliveries: list[Delivery] = field(default_factory=list)


async def resolve(operation: str, args: Args, read: Reader, prices: Prices) -> Facts:
    with traces.span("facts") as span:
        draft = await RESOLVERS[operation](args, read, prices)
        if span.is_recording():  # counts and the budget's name only: never a number or a name
            span.set_attribute("relatel.facts.destinations", len(draft.destinations))
            span.set_attribute("relatel.facts.deliveries", len(draft.deliveries))
            if draft.spend is not None:
                span.set_attribute("relatel.facts.budget", draft.spend[0])
                span.set_attribute("relatel.facts.spend", draft.spend[1])
    if draft.cost_dkk is not None:
        draft.lines.append(f"Estimated cost: {draft.cost_dkk:.2f} DKK.")
    return Facts(
        "\n".join(draft.lines),
        clean_data(draft.summary),
        tuple(draft.destinations),
        draft.spend,
        draft.cost_dkk,
        tuple(draft.deliveries),
    )


def number(value: Any) -> str:
    """A phone number as people write it; anything else quoted as the text it is."""
    if not value:
        return "no number"
    return phones.display(str(value)) or f"the text {quoted(value, 40)}"


def count(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else quoted(value, 20)


def moment(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return quoted(value, 40)


async def _must(read: Reader, path: str, thing: str) -> Any:
    found = await read(path)
    if found is None:
        raise ToolError("not_found", f"{thing} does not exist; nothing was sent.", 404)
    return found


def _cost(price: float | None, units: int) -> float | None:
    return None if price is None else round(price * units, 2)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# ------------------------------------------------------------------------------- calls and SMS


async def _call(args: Any, read: Reader, prices: Prices) -> _Draft:
    me = (await read("/api/v2/employee"))["employee"]
    contact = await read(f"/api/v2/contacts/by_number/{args.to_number}")
    callee = number(args.to_number)
    lines = [f"Place a real phone call to {callee}?"]
    if contact:
        name = contact["contact"].get("name")
        lines.append(f"That number is in your address book; the contact's name there: {quoted(name)}")
    lines.append(
        f"Your phone rings first: {number(me.get('number'))}, the employee named {quoted(me.get('name'))}. "
        f"When you answer, {callee} is called."
    )
    if args.restrict_to:
        lines.append(
            f"It rings only on {'the web phone' if args.restrict_to == 'web_call' else 'your mobile'}."
        )
    summary: dict[str, Any] = {
        "caller": me.get("name"),
        "caller_number": me.get("number"),
        "to": args.to_number,
        "contact": contact and contact["contact"].get("name"),
    }
    if args.cloak_reception_id is not None:
        reception = await _must(
            read, f"/api/v2/receptions/{args.cloak_reception_id}", f"Reception {args.cloak_reception_id}"
        )
        shown = (reception.get("phone_number") or {}).get("number")
        lines.append(
            f"Caller ID shown: {number(shown)}, the reception named {quoted(reception.get('name'))}."
        )
        summary["caller_id"] = shown
    return _Draft(lines, summary, [args.to_number], ("calls", 1), _cost(prices.call, 1))


async def _sms(recipients: list[dict[str, Any]], args: Any, prices: Prices) -> _Draft:
    if missing := [r for r in recipients if not r.get("number")]:
        raise ToolError(
            "refused",
            f"The employee named {quoted(missing[0].get('name'))} has no phone number; nothing was sent.",
        )
    info = sms_segments(args.body)
    total = info.segments * len(recipients)
    lines = [f"Send a paid SMS to {'1 person' if len(recipients) == 1 else f'{len(recipients)} people'}?"]
    lines += [f"  {number(r['number'])}, the employee named {quoted(r.get('name'))}" for r in recipients]
    lines.append(
        f"The text, exactly as it will be sent ({info.encoding}, {_plural(info.segments, 'segment')} each): "
        f"{verbatim(args.body)}"
    )
    lines += _removed(args, "body", "text")
    lines.append(f"{_plural(total, 'segment')} in total.")
    summary = {
        "recipients": [{"id": r.get("id"), "name": r.get("name"), "number": r["number"]} for r in recipients],
        "text": args.body,
        "encoding": info.encoding,
        "segments_per_recipient": info.segments,
        "total_segments": total,
    }
    return _Draft(
        lines,
        summary,
        [str(r["number"]) for r in recipients],
        ("sms_segments", total),
        _cost(prices.sms_segment, total),
    )


def _removed(args: Any, name: str, what: str) -> list[str]:
    """The line that says invisible characters were taken out of a text that is sent, if any were."""
    if not (n := args.removed(name)):
        return []
    return [
        f"{_plural(n, 'invisible or formatting character')} in the agent's {what} "
        f"{'was' if n == 1 else 'were'} taken out: {'it is' if n == 1 else 'they are'} not sent."
    ]


async def _employee_sms(args: Any, read: Reader, prices: Prices) -> _Draft:
    employee = (await _must(read, f"/api/v2/employees/{args.id}", f"Employee {args.id}"))["employee"]
    return await _sms([employee], args, prices)


async def _group_sms(args: Any, read: Reader, prices: Prices) -> _Draft:
    group = await _must(
        read, f"/api/v2/employee_groups/{args.employee_group_id}", f"Employee group {args.employee_group_id}"
    )
    members = set(group.get("employee_ids") or [])
    employees = (await read("/api/v2/employees"))["employees"]
    recipients = [e for e in employees if e.get("id") in members]
    if not recipients:
        raise ToolError(
            "refused",
            f"The employee group named {quoted(group.get('name'))} has no members; nothing was sent.",
        )
    draft = await _sms(recipients, args, prices)
    draft.lines[0] = (
        f"Send a paid SMS to every member of the employee group named {quoted(group.get('name'))} "
        f"({len(recipients)} people)?"
    )
    draft.lines.insert(
        len(recipients) + 1,
        "Each of them gets their own SMS, sent one by one: nobody who joins the group in the meantime gets it.",
    )
    draft.summary["group"] = group.get("name")
    segments = draft.summary["segments_per_recipient"]
    each = catalog.named("sendEmployeeMessage")  # send_employee_sms's own request, per member
    draft.deliveries = [
        _sms_to(each, clean_data(to), args.body, segments) for to in draft.summary["recipients"]
    ]
    return draft


def _sms_to(each: catalog.Operation, to: dict[str, Any], body: str, segments: int) -> Delivery:
    """The contract's request for one SMS to one employee, as `each` (send_employee_sms) builds it."""
    try:
        request = each.request(each.args.model_validate({"id": to["id"], "body": body}))
    except ValidationError:
        raise ToolError(
            "bad_response", f"Relatel gave {quoted(to['id'], 20)} as an employee's id; nothing was sent."
        ) from None
    return Delivery(request, to, ("sms_segments", segments))


# ------------------------------------------------------------------------------- orders


async def _activation(args: Any, read: Reader, prices: Prices) -> _Draft:
    lines = [
        "Order a new paid M2M subscription?",
        f"The product, as the agent gave it: {verbatim(args.product_name)}",
        *_removed(args, "product_name", "product"),
        f"The SIM card's ICC id: {args.icc_id}",
    ]
    if args.description:
        lines.append(f"The description, as the agent gave it: {verbatim(args.description)}")
        lines += _removed(args, "description", "description")
    if args.overuse_limit_dkk is not None:
        lines.append(f"Overuse limit: {args.overuse_limit_dkk} DKK a month.")
    summary = {"product": args.product_name, "icc_id": args.icc_id, "description": args.description}
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


async def _cancellation(args: Any, read: Reader, prices: Prices) -> _Draft:
    when = f"on {args.cancel_on.isoformat()}" if args.cancel_on else "as soon as possible"
    if args.subscription_id is not None:
        sub = await _must(
            read, f"/api/v2/m2m/subscriptions/{args.subscription_id}", f"Subscription {args.subscription_id}"
        )
        lines = [
            f"Cancel M2M subscription {args.subscription_id} {when}?",
            f"Its description: {quoted(sub.get('description'))}",
            f"Its product: {quoted(sub.get('product_name'))}; SIM card {quoted(sub.get('icc_id'), 30)}; "
            f"state now: {quoted(sub.get('state'), 30)}.",
        ]
        if args.phone_number is not None:
            lines.append(f"And the subscription on {number(args.phone_number)}.")
        described = {k: sub.get(k) for k in ("description", "product_name", "icc_id", "state")}
    else:
        lines = [f"Cancel the subscription on {number(args.phone_number)} {when}?"]
        described = {}
    lines.append("This ends the subscription; it cannot be undone here.")
    summary = {
        "subscription_id": args.subscription_id,
        "phone_number": args.phone_number,
        "when": when,
        **described,
    }
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


async def _product_change(args: Any, read: Reader, prices: Prices) -> _Draft:
    lines = [
        f"Change the product of M2M number {number(args.phone_number)}?",
        f"The new product, as the agent gave it: {verbatim(args.product_name)}",
        *_removed(args, "product_name", "product"),
    ]
    summary = {"phone_number": args.phone_number, "product": args.product_name}
    return _Draft(lines, summary, [], ("orders", 1), _cost(prices.order, 1))


# ------------------------------------------------------------------------------- deletes


async def _delete_contact(args: Any, read: Reader, prices: Prices) -> _Draft:
    contact = (await _must(read, f"/api/v2/contacts/{args.id}", f"Contact {args.id}"))["contact"]
    comments = (await read(f"/api/v2/contacts/{args.id}/comments") or {}).get("comments", [])
    lines = [
        f"Delete contact {args.id} ({number(contact.get('number'))}) and its "
        f"{_plural(len(comments), 'comment')}, for everyone in the company?",
        f"The contact's name in your address book: {quoted(contact.get('name'))}",
        "This cannot be undone.",
    ]
    return _Draft(
        lines, {"contact": contact.get("name"), "number": contact.get("number"), "comments": len(comments)}
    )


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
        f"Delete comment {args.id} on contact {args.contact_id}?",
        f"The contact's name in your address book: {quoted(contact.get('name'))}",
        f"The comment, as a colleague wrote it: {quoted(comment.get('body'), 200)}",
        "This cannot be undone.",
    ]
    return _Draft(lines, {"contact": contact.get("name"), "comment": comment.get("body")})


async def _delete_voicemail(args: Any, read: Reader, prices: Prices) -> _Draft:
    vm = await _must(read, f"/api/v2/voice_mails/{args.id}", f"Voicemail {args.id}")
    lines = [
        f"Delete voicemail {args.id} from {number(vm.get('from_number'))}, left {moment(vm.get('created_at'))} "
        f"({count(vm.get('duration'))} seconds), and its recording?"
    ]
    if vm.get("from_contact"):
        lines.append(f"The caller's name in your address book: {quoted(vm['from_contact'].get('name'))}")
    lines.append("This cannot be undone.")
    return _Draft(lines, {"from": vm.get("from_number"), "created_at": vm.get("created_at")})


async def _delete_employee(args: Any, read: Reader, prices: Prices) -> _Draft:
    employee = (await _must(read, f"/api/v2/employees/{args.id}", f"Employee {args.id}"))["employee"]
    lines = [
        f"Delete employee {args.id} ({number(employee.get('number'))}) from the company?",
        f"The employee's name: {quoted(employee.get('name'))}",
        "They lose access and stop receiving calls. This cannot be undone here.",
    ]
    return _Draft(lines, {"employee": employee.get("name"), "number": employee.get("number")})


async def _leave_group(args: Any, read: Reader, prices: Prices) -> _Draft:
    group = await _must(
        read, f"/api/v2/employee_groups/{args.employee_group_id}", f"Employee group {args.employee_group_id}"
    )
    lines = [
        f"Leave employee group {args.employee_group_id}? Its calls stop ringing your phone.",
        f"The group's name: {quoted(group.get('name'))}",
    ]
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


def check_resolvers(operations: Iterable[catalog.Operation]) -> None:
    """At start-up: every costly and destructive tool has a resolver here, or the gate could not
    say what it would do (it would fail only when the tool is called)."""
    if missing := [op.name for op in operations if op.gated and op.operation not in RESOLVERS]:
        raise catalog.CatalogError(
            f"tools.yaml: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} costly or destructive "
            "but relatel_mcp/policy/facts.py has no resolver for the operation (RESOLVERS): the gate "
            "could not tell a human what it would do"
        )
