"""The list and get operations: query filters, the contract's cursor paging (newest first, `limit`)
and one `ListSpec` per listed collection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from relatel_mcp.sandbox.checks import Problem, Spec, integer, invalid, one_of, parse_time, validate
from relatel_mcp.sandbox.context import Ctx, ts
from relatel_mcp.sandbox.data import Record
from relatel_mcp.sandbox.render import (
    call_json,
    contact_json,
    employee_json,
    group_json,
    own_voice_mail,
    plain_json,
    smiley_json,
    voice_mail_json,
)

Predicate = Callable[[Record], bool]
FilterFactory = Callable[[Ctx, str], Predicate]


def equals(name: str) -> FilterFactory:
    return lambda ctx, raw: lambda r: str(r.get(name)) == raw


def int_equals(name: str, *choices: int) -> FilterFactory:
    def factory(ctx: Ctx, raw: str) -> Predicate:
        wanted = integer(raw)
        if choices:
            one_of(*choices)(wanted)
        return lambda r: r.get(name) == wanted

    return factory


def choice(name: str, *choices: str) -> FilterFactory:
    def factory(ctx: Ctx, raw: str) -> Predicate:
        wanted = one_of(*choices)(raw)
        return lambda r: str(r.get(name)) == wanted

    return factory


def number_in(*names: str) -> FilterFactory:
    return lambda ctx, raw: lambda r: raw in (r.get(n) for n in names)


def time_bound(name: str, *, lower: bool) -> FilterFactory:
    def factory(ctx: Ctx, raw: str) -> Predicate:
        bound = parse_time(raw)
        return lambda r: r.get(name) is not None and (ts(r[name]) >= bound if lower else ts(r[name]) <= bound)

    return factory


def at_least(name: str) -> FilterFactory:
    def factory(ctx: Ctx, raw: str) -> Predicate:
        bound = integer(raw)
        return lambda r: r[name] >= bound

    return factory


def has_text(name: str) -> FilterFactory:
    def factory(ctx: Ctx, raw: str) -> Predicate:
        wanted = raw.strip().lower() not in ("false", "0", "no")
        return lambda r: bool(r.get(name)) == wanted

    return factory


def contains(name: str) -> FilterFactory:
    return lambda ctx, raw: lambda r: raw.casefold() in str(r.get(name, "")).casefold()


@dataclass(frozen=True)
class ListSpec:
    collection: str
    wrapper: str | None  # None: a bare JSON array
    render: Callable[[Ctx, Record], Record]
    filters: dict[str, FilterFactory]
    sort_key: str = "id"
    newest_first: bool = True
    default_limit: int | None = 30  # None: no pagination
    visible: Callable[[Ctx, Record], bool] = field(default=lambda ctx, r: True)


def limit_of(ctx: Ctx, default: int) -> int:
    raw = ctx.query.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = integer(raw)
    except Problem as problem:
        raise invalid({"limit": [str(problem)]}) from None
    if value < 1:
        raise invalid({"limit": ["must be greater than 0"]})
    return min(value, 100)


def select(ctx: Ctx, spec: ListSpec) -> list[Record]:
    """Visible records passing every given filter, sorted, limited (the contract's cursor paging)."""
    # a filter checks its query value like a field: into a predicate, or a Problem (all in one 422)
    checks: Spec = {name: (partial(factory, ctx), False) for name, factory in spec.filters.items()}
    predicates = validate(ctx.query, checks).values()
    limit = limit_of(ctx, spec.default_limit) if spec.default_limit else None
    records = [r for r in getattr(ctx.company, spec.collection).values() if spec.visible(ctx, r)]
    records = [r for r in records if all(p(r) for p in predicates)]
    key = (lambda r: r["id"]) if spec.sort_key == "id" else (lambda r: ts(r[spec.sort_key]))
    records.sort(key=key, reverse=spec.newest_first)
    return records[:limit]


def lister(spec: ListSpec) -> Callable[[Ctx], Any]:
    def handler(ctx: Ctx) -> Any:
        items = [spec.render(ctx, r) for r in select(ctx, spec)]
        return items if spec.wrapper is None else {spec.wrapper: items}

    return handler


def getter(
    collection: str, thing: str, render: Callable, wrapper: str | None = None, key: str = "id"
) -> Callable:
    def handler(ctx: Ctx) -> Any:
        item = render(ctx, ctx.find(collection, ctx.params[key], thing))
        return item if wrapper is None else {wrapper: item}

    return handler


def endpoint_number(ctx: Ctx, endpoint: str) -> str | None:
    kind, _, raw = endpoint.partition("#")
    if kind == "Reception" and raw.isdigit() and int(raw) in ctx.company.receptions:
        return ctx.company.receptions[int(raw)]["phone_number"]["number"]
    employee = ctx.company.employees.get(int(raw)) if kind == "Employee" and raw.isdigit() else None
    return None if employee is None else employee["number"]


def voice_mail_number(ctx: Ctx, raw: str) -> Predicate:
    return lambda vm: raw in (vm["from_number"], endpoint_number(ctx, vm["endpoint"]))


CALL_STATUSES = ("new", "ringing", "orphaned", "missed", "voicemail", "answered")
CALLS = ListSpec(
    "calls",
    "calls",
    call_json,
    sort_key="started_at",
    filters={
        "endpoint": equals("endpoint"),
        "number": number_in("from_number", "to_number"),
        "direction": choice("direction", "incoming", "outgoing"),
        "status": choice("status", *CALL_STATUSES),
        "started_at_gt_or_eq": time_bound("started_at", lower=True),
        "started_at_lt_or_eq": time_bound("started_at", lower=False),
        "ended_at_gt_or_eq": time_bound("ended_at", lower=True),
        "ended_at_lt_or_eq": time_bound("ended_at", lower=False),
    },
)
VOICE_MAILS = ListSpec(
    "voice_mails",
    "voice_mails",
    voice_mail_json,
    sort_key="created_at",
    default_limit=10,
    visible=own_voice_mail,
    filters={
        "created_at_lt_or_eq": time_bound("created_at", lower=False),
        "endpoint": equals("endpoint"),
        "number": voice_mail_number,
    },
)
CONTACTS = ListSpec(
    "contacts",
    "contacts",
    contact_json,
    newest_first=False,
    default_limit=10,
    filters={"number": equals("number"), "id_gt_or_eq": at_least("id")},
)
SMILEYS = ListSpec(
    "smileys",
    "smileys",
    smiley_json,
    sort_key="rated_at",
    filters={
        "number": equals("number"),
        "rated_at_lt_or_eq": time_bound("rated_at", lower=False),
        "rated_at_gt_or_eq": time_bound("rated_at", lower=True),
        "endpoint": equals("endpoint"),
        "reception_id": int_equals("reception_id"),
        "employee_id": int_equals("employee_id"),
        "rating": int_equals("rating", 0, 1),
        "commented": has_text("comment"),
    },
)
MESSAGES = ListSpec(
    "messages",
    "messages",
    plain_json,
    sort_key="created_at",
    filters={
        "created_at_lt_or_eq": time_bound("created_at", lower=False),
        "created_at_gt_or_eq": time_bound("created_at", lower=True),
        "endpoint": equals("endpoint"),
    },
)
CHATS = ListSpec(
    "chats",
    "chats",
    plain_json,
    sort_key="updated_at",
    newest_first=False,
    filters={"updated_at_gt_or_eq": time_bound("updated_at", lower=True)},
)
TAGS = ListSpec(
    "tags", None, plain_json, newest_first=False, default_limit=None, filters={"name": contains("name")}
)
ORDERS = ListSpec("orders", "orders", plain_json, default_limit=None, filters={})
EMPLOYEES = ListSpec(
    "employees", "employees", employee_json, newest_first=False, default_limit=None, filters={}
)
GROUPS = ListSpec(
    "employee_groups", "employee_groups", group_json, newest_first=False, default_limit=None, filters={}
)
RECEPTIONS = ListSpec(
    "receptions", "receptions", plain_json, newest_first=False, default_limit=None, filters={}
)
