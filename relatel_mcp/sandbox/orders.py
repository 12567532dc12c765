"""Handlers for M2M subscriptions and orders: orders are recorded (pending), take effect on the
sandbox's M2M subscriptions and land in the outbox; nothing is ordered for real. Also the M2M
consumption CSV.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.responses import Response

from relatel_mcp.sandbox.checks import (
    Problem,
    Spec,
    day,
    integer,
    invalid,
    non_negative,
    one_of,
    phone,
    text,
    unwrap,
    validate,
)
from relatel_mcp.sandbox.context import Ctx, public
from relatel_mcp.sandbox.data import Record, format_number, now_iso, today

PRODUCTS = ("m2m-small-one", "m2m-medium", "m2m-large")
ICC = re.compile(r"\d{19,20}")


def icc(value: Any) -> str:
    if not ICC.fullmatch(text(value)):
        raise Problem("must be 19-20 digits")
    return value


def get_m2m_subscription_ids(ctx: Ctx) -> list[int]:
    return sorted(ctx.company.m2m_subscriptions)


def update_m2m_subscription(ctx: Ctx) -> Any:
    subscription = ctx.find("m2m_subscriptions", ctx.params["id"], "Subscription")
    spec: Spec = {"description": (text, False), "overuse_limit_dkk": (non_negative, False)}
    subscription.update(validate(unwrap(ctx.body, "subscription"), spec, partial=True))
    return public(subscription)


def find_subscription(ctx: Ctx, fields: dict[str, Any]) -> Record:
    """The subscription an order names by `subscription_id` and/or `phone_number` (422 otherwise)."""
    subs = ctx.company.m2m_subscriptions
    if "subscription_id" not in fields and "phone_number" not in fields:
        raise invalid({"subscription_id": ["can't be blank (give subscription_id or phone_number)"]})
    by_id = subs.get(fields["subscription_id"]) if "subscription_id" in fields else None
    by_number = next((s for s in subs.values() if s["_phone_number"] == fields.get("phone_number")), None)
    for key, match in (("subscription_id", by_id), ("phone_number", by_number)):
        if key in fields and match is None:
            raise invalid({key: ["does not exist"]})
    if by_id and by_number and by_id is not by_number:
        raise invalid({"phone_number": ["does not belong to subscription_id"]})
    found = by_id or by_number
    assert found is not None  # one of the two was given, and each one given exists
    return found


def activate(ctx: Ctx, fields: dict[str, Any], order_id: int) -> None:
    if any(
        s["icc_id"] == fields["icc_id"] and s["state"] != "cancelled"
        for s in ctx.company.m2m_subscriptions.values()
    ):
        raise invalid({"icc_id": ["is already in use"]})
    sub_id = ctx.state.new_id("m2m_subscriptions")
    ctx.company.m2m_subscriptions[sub_id] = {
        "id": sub_id,
        "description": fields.get("description", ""),
        "order_id": order_id,
        "product_name": fields["product_name"],
        "state": "pending",
        "icc_id": fields["icc_id"],
        "ordered_on": today().isoformat(),
        "activated_on": None,
        "cancelled_on": None,
        "contract_expired_on": None,
        "overuse_limit_dkk": fields.get("overuse_limit_dkk", 0),
        "_phone_number": f"457199{sub_id % 10000:04d}",
    }


def cancel(ctx: Ctx, fields: dict[str, Any], order_id: int) -> None:
    subscription = find_subscription(ctx, fields)
    if subscription["state"] == "cancelled":
        raise invalid({"subscription_id": ["is already cancelled"]})
    when = fields.get("cancel_on") or today()
    subscription["cancelled_on"] = when.isoformat()
    if when <= today():
        subscription["state"] = "cancelled"


def change_product(ctx: Ctx, fields: dict[str, Any], order_id: int) -> None:
    subscription = find_subscription(ctx, fields)
    if subscription["state"] == "cancelled":
        raise invalid({"phone_number": ["belongs to a cancelled subscription"]})
    subscription["product_name"] = fields["product_name"]


@dataclass(frozen=True)
class OrderKind:
    type: str
    fields: Spec
    effect: Callable[[Ctx, dict[str, Any], int], None]


CANCEL_FIELDS: Spec = {
    "subscription_id": (integer, False),
    "phone_number": (phone, False),
    "cancel_on": (day, False),
}
ORDER_KINDS: dict[str, OrderKind] = {
    "createM2MActivationOrder": OrderKind(
        "Order::ActivateM2M",
        {
            "product_name": (one_of(*PRODUCTS), True),
            "icc_id": (icc, True),
            "description": (text, False),
            "overuse_limit_dkk": (non_negative, False),
        },
        activate,
    ),
    "createM2MCancellationOrder": OrderKind("Order::CancelM2M", CANCEL_FIELDS, cancel),
    "createSubscriptionCancellationOrder": OrderKind("Order::CancelSubscription", CANCEL_FIELDS, cancel),
    "createM2MProductChangeOrder": OrderKind(
        "Order::ChangeM2MProduct",
        {"phone_number": (phone, True), "product_name": (one_of(*PRODUCTS), True)},
        change_product,
    ),
}


def order_handler(kind: OrderKind) -> Callable[[Ctx], Any]:
    """Orders are recorded (pending) and take effect on the M2M subscriptions; nothing is ordered for real."""

    def handler(ctx: Ctx) -> Any:
        fields = validate(unwrap(ctx.body, "order"), kind.fields)
        order_id = ctx.state.new_id("orders")
        kind.effect(ctx, fields, order_id)
        order = {
            "id": order_id,
            "type": kind.type,
            "state": "pending",
            "pending_tasks": True,
            "_created_at": now_iso(),
        }
        ctx.company.orders[order_id] = order
        request = {k: v.isoformat() if isinstance(v, date) else v for k, v in fields.items()}
        ctx.state.outbox.append(
            {"kind": "order", "at": now_iso(), "order_id": order_id, "type": kind.type, "order": request}
        )
        return {"order": public(order)}

    return handler


ORDERS_BY_OPERATION = {operation: order_handler(kind) for operation, kind in ORDER_KINDS.items()}

CSV_COLUMNS = [
    "subscription_id",
    "subscription_state",
    "phone_number",
    "product_name",
    "icc",
    "type",
    "count",
    "dkk_to_vat",
    "dkk_no_vat",
    "subscription_activated_on",
    "subscription_cancelled_on",
    "formatted_phone_number",
    "description",
]


def listed(ctx: Ctx, key: str) -> set[str]:
    """Values of a repeatable query key (`?numbers=a&numbers=b`, also `numbers[]=` or comma separated)."""
    raw = ctx.multi_query.get(key, []) + ctx.multi_query.get(f"{key}[]", [])
    return {part.strip() for value in raw for part in value.split(",") if part.strip()}


def get_m2m_consumption(ctx: Ctx) -> Response:
    numbers, sub_ids = listed(ctx, "numbers"), listed(ctx, "subscription_ids")
    if any(not s.isdigit() for s in sub_ids):
        raise invalid({"subscription_ids": ["must be a list of integer ids"]})
    out = io.StringIO()
    out.write(",".join(CSV_COLUMNS) + "\n")  # header unquoted, values quoted: as the contract's example
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    for row in ctx.company.consumption:
        sub = ctx.company.m2m_subscriptions.get(row["subscription_id"])
        if (
            sub is None
            or (numbers and sub["_phone_number"] not in numbers)
            or (sub_ids and str(sub["id"]) not in sub_ids)
        ):
            continue
        writer.writerow(
            [
                sub["id"],
                sub["state"],
                sub["_phone_number"],
                sub["product_name"],
                sub["icc_id"],
                row["type"],
                str(row["count"]),
                row["dkk_to_vat"],
                row["dkk_no_vat"],
                sub["activated_on"] or "",
                sub["cancelled_on"] or "",
                format_number(sub["_phone_number"]),
                sub["description"],
            ]
        )
    return Response(out.getvalue(), media_type="text/csv")
