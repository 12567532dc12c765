"""The sandbox: a Starlette app speaking the Relatel API 2.1.2 for a simulated company.

Every contract operation except OAuth is served from in-memory state (see data.py). Handlers are
plain functions of a request context; auth, plan/admin/M2M restrictions (one table), lookups,
pagination, wrapping and validation errors are shared helpers. Out-of-band control endpoints under
/_sandbox/ (loopback only, no auth) expose the outbox of costly actions, the request log and faults.

Interpretations where the contract is silent:

- GET /api/v2/statistics: endpoint_type is "reception" or "employee", group_by is "date" or
  "endpoint"; start/end are ISO dates (inclusive, Copenhagen days, at most 366 days). Rows count the
  seeded calls: {date | endpoint, endpoint_name, calls, incoming, outgoing, answered, missed,
  talk_duration}. An employee's calls are its direct calls plus reception calls it answered.
- Reception statistics count finished incoming calls to the reception whose phase is in `phase`
  (default all): answered = status answered, missed = missed/voicemail/orphaned; within_target.missed
  counts missed calls that ended within answer_target (callers who gave up early).
- Smiley statistics: totals by kind, happy/angry (rating 1/0), commented, and NPS = % promoters (9-10)
  minus % detractors (0-6), over smileys rated in [from_time, to_time].
- Query times are ISO 8601; times without an offset are Copenhagen time, and a '+' that arrived
  as a space ("...T10:00:00 01:00") is repaired. `commented=false|0` means "without a comment".
- Chats are ordered oldest-updated first, so `updated_at_gt_or_eq` works as a sync cursor.
- Voicemails are those of all receptions plus the authenticated employee's own (as documented);
  a call's `voice_mail` is shown under the same rule (null for a colleague's personal voicemail).
- Call recordings carry a sound URL (/api/v2/call_recordings/N/sound) that the sandbox does not
  serve: the contract has no such operation.
- Both cancellation orders resolve an M2M subscription by `subscription_id` or `phone_number`.
- A request body that is not JSON gets 400; `to_number` may be a JSON number (the seed example is).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from relatel_mcp.sandbox import faults as fault_mod
from relatel_mcp.sandbox.data import (
    CPH,
    Company,
    Record,
    SandboxState,
    error_body,
    format_number,
    now_iso,
    today,
)
from relatel_mcp.sms import sms_segments

# ---------------------------------------------------------------------------------------------- auth

DEMO_TOKENS: dict[str, str] = {
    "sandbox-admin": "Mette Hansen, admin of Fjordlys ApS (company 1: Switch Premium, M2M agreement)",
    "sandbox-employee": "Jonas Nielsen, employee (not admin) of Fjordlys ApS (company 1)",
    "sandbox-starter": "Lars Bager, admin of Bageriet Solsikke (company 2: Switch Starter, no M2M agreement)",
}
_IDENTITIES = {"sandbox-admin": (1, 1), "sandbox-employee": (1, 2), "sandbox-starter": (2, 101)}
TENANT_TOKEN = re.compile(r"sandbox-tenant-[A-Za-z0-9_-]{1,64}")  # any of these is Mette in company 1


def request_token(headers: Any, query: dict[str, list[str]]) -> str | None:
    """The access token from `Authorization: Bearer` or, as a testing convenience, `?access_token=`."""
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (query.get("access_token") or [None])[0]


def token_fingerprint(token: str | None) -> str | None:
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()[:16]


def identify(token: str | None) -> tuple[int, int] | None:
    if token in _IDENTITIES:
        return _IDENTITIES[token]
    return (1, 1) if token and TENANT_TOKEN.fullmatch(token) else None


@dataclass(frozen=True)
class Requirement:
    message: str
    met: Callable[[Company, Record], bool]


PREMIUM = Requirement("Switch Premium required", lambda company, me: company.plan == "Switch Premium")
ADMIN = Requirement("Admin access required", lambda company, me: bool(me["admin"]))
M2M = Requirement("M2M agreement required", lambda company, me: company.m2m_agreement)

REQUIREMENTS: dict[str, Requirement] = {
    "sendEmployeeMessage": PREMIUM,
    "sendEmployeeGroupMessage": PREMIUM,
    "getReceptionStatistics": PREMIUM,
    "getReceptionCallStatus": PREMIUM,
    "createEmployee": ADMIN,
    "updateEmployee": ADMIN,
    "deleteEmployee": ADMIN,
    "createEmployeeGroup": ADMIN,
    "updateEmployeeGroup": ADMIN,
    "getM2MSubscriptionIds": M2M,
    "getM2MSubscription": M2M,
    "updateM2MSubscription": M2M,
    "createM2MActivationOrder": M2M,
    "createM2MCancellationOrder": M2M,
    "getM2MConsumptionCsv": M2M,
    "createSubscriptionCancellationOrder": M2M,
    "createM2MProductChangeOrder": M2M,
}

# ---------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.status, self.message, self.errors), status_code=self.status)


class Problem(ValueError):
    """One field's validation problem, e.g. "can't be blank"."""


def invalid(errors: dict[str, list[str]]) -> ApiError:
    detail = ", ".join(
        f"{name.replace('_', ' ').capitalize()} {p}" for name, ps in errors.items() for p in ps
    )
    return ApiError(422, f"Validation failed: {detail}", errors)


def not_found(thing: str) -> ApiError:
    return ApiError(404, f"{thing} not found")


# ---------------------------------------------------------------------------------------------- validation

Check = Callable[[Any], Any]
Spec = dict[str, tuple[Check, bool]]  # field -> (check, required)
PHONE = re.compile(r"\d{8,15}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
QUERY_TIME_SPACE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)")


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem("must be a string")
    return value


def present(value: Any) -> str:
    if not text(value).strip():
        raise Problem("can't be blank")
    return value


def phone(value: Any) -> str:
    value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, str) or not PHONE.fullmatch(value):
        raise Problem("must be 8-15 digits including the country code, without + or 00")
    return value


def email(value: Any) -> str:
    if not EMAIL.fullmatch(text(value)):
        raise Problem("is invalid")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem("must be true or false")
    return value


def integer(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem("must be an integer")
    return value


def non_negative(value: Any) -> int:
    if integer(value) < 0:
        raise Problem("must be greater than or equal to 0")
    return int(value)


def id_list(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise Problem("must be a list of ids")
    return [integer(item) for item in value]


def nullable(check: Check) -> Check:
    return lambda value: None if value is None or value == "" else check(value)


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> Any:
        if value not in choices:
            raise Problem(f"is not included in the list ({', '.join(map(str, choices))})")
        return value

    return check


def parse_time(raw: Any) -> datetime:
    """ISO 8601 time; no offset means Copenhagen time."""
    value = QUERY_TIME_SPACE.sub(r"\1+\2", text(raw).strip())
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise Problem("is not a valid ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CPH)


def timestamp(raw: Any) -> str:
    return parse_time(raw).isoformat()


def day(raw: Any) -> date:
    try:
        return date.fromisoformat(text(raw))
    except ValueError:
        raise Problem("is not a valid ISO 8601 date") from None


def validate(data: Any, spec: Spec, *, partial: bool = False) -> dict[str, Any]:
    """Check and coerce the fields of `spec`; unknown fields are ignored (like Rails strong params)."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, (check, required) in spec.items():
        if name not in data:
            if required and not partial:
                errors[name] = ["can't be blank"]
            continue
        if data[name] is None and required:
            errors[name] = ["can't be blank"]
            continue
        try:
            clean[name] = check(data[name])
        except Problem as problem:
            errors[name] = [str(problem)]
    if errors:
        raise invalid(errors)
    return clean


def unwrap(body: Any, key: str) -> dict[str, Any]:
    """The object under the Rails-style wrapper key, e.g. {"contact": {...}}."""
    inner = body.get(key) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise invalid({key: ["is missing" if inner is None else "must be an object"]})
    return inner


def top_level(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid({"body": ["must be a JSON object"]})
    return body


# ---------------------------------------------------------------------------------------------- context


@dataclass
class Ctx:
    """What a handler sees: the authenticated employee's company, the request's params and body."""

    state: SandboxState
    company: Company
    me: Record
    params: dict[str, Any]
    query: dict[str, str]
    multi_query: dict[str, list[str]]
    body: Any
    base_url: str

    def find(self, collection: str, key: Any, thing: str) -> Record:
        record = getattr(self.company, collection).get(key)
        if record is None:
            raise not_found(thing)
        return record

    def query_fields(self, spec: Spec) -> dict[str, Any]:
        return validate(self.query, spec)


def public(record: Record) -> Record:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------------------------------------- rendering


def sound(ctx: Ctx, path: str) -> Record:
    return {"formats": ["audio/mpeg"], "url": f"{ctx.base_url}{path}"}


def contact_json(record: Record) -> Record:
    return {**public(record), "number_formatted": format_number(record["number"])}


def contact_for(ctx: Ctx, number: str | None) -> Record | None:
    match = next((c for c in ctx.company.contacts.values() if number and c["number"] == number), None)
    return contact_json(match) if match else None


def presence(employee: Record) -> str:
    return "do_not_disturb" if employee["do_not_disturb"] else employee["_presence"]


def employee_json(ctx: Ctx, e: Record) -> Record:
    cloak = ctx.company.receptions.get(e["_cloak_reception_id"])
    groups = [g["id"] for g in ctx.company.employee_groups.values() if e["id"] in g["employee_ids"]]
    return {
        "id": e["id"],
        "name": e["name"],
        "number": e["number"],
        "number_formatted": format_number(e["number"]) or "",
        "endpoint": f"Employee#{e['id']}",
        "admin": e["admin"],
        "cloak_reception": cloak and public(cloak),
        "company_id": e["company_id"],
        "dnd_timeout_at": e["dnd_timeout_at"],
        "do_not_disturb": e["do_not_disturb"],
        "employee_group_ids": groups,
        "features": e["features"],
        "live_presence": presence(e),
        "speed_dial": e["speed_dial"],
    }


def group_json(ctx: Ctx, g: Record) -> Record:
    states = {presence(ctx.company.employees[i]) for i in g["employee_ids"] if i in ctx.company.employees}
    live = (
        "available" if "available" in states else "unknown" if "unknown" in states or not states else "busy"
    )
    return {
        "id": g["id"],
        "name": g["name"],
        "live_presence": live,
        "speed_dial": g["speed_dial"],
        "employee_ids": g["employee_ids"],
        "endpoint": f"EmployeeGroup#{g['id']}",
    }


def recording_json(ctx: Ctx, recording: Record | None) -> Record | None:
    if recording is None:
        return None
    return {**recording, "sound": sound(ctx, f"/api/v2/call_recordings/{recording['id']}/sound")}


def voice_mail_json(ctx: Ctx, vm: Record) -> Record:
    return {
        **public(vm),
        "from_contact": contact_for(ctx, vm["from_number"]),
        "sound": sound(ctx, f"/api/v2/voice_mails/{vm['id']}/sound"),
    }


def smiley_json(ctx: Ctx, s: Record) -> Record:
    call = ctx.company.calls.get(s["conversation_uuid"])
    return {
        **s,
        "contact": contact_for(ctx, s["number"]),
        "call_recording": recording_json(ctx, call and call["recording"]),
    }


def call_json(ctx: Ctx, c: Record) -> Record:
    vm = next((v for v in ctx.company.voice_mails.values() if v.get("_call_uuid") == c["call_uuid"]), None)
    smiley = next((s for s in ctx.company.smileys.values() if s["conversation_uuid"] == c["call_uuid"]), None)
    return {
        **public(c),
        "from_contact": contact_for(ctx, c["from_number"]),
        "to_contact": contact_for(ctx, c["to_number"]),
        "recording": recording_json(ctx, c["recording"]),
        "voice_mail": voice_mail_json(ctx, vm) if vm and own_voice_mail(ctx, vm) else None,
        "smiley": smiley and smiley_json(ctx, smiley),
    }


def plain_json(ctx: Ctx, record: Record) -> Record:
    return public(record)


# ---------------------------------------------------------------------------------------------- lists

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
    predicates, errors = [], {}
    for name, factory in spec.filters.items():
        if name in ctx.query:
            try:
                predicates.append(factory(ctx, ctx.query[name]))
            except Problem as problem:
                errors[name] = [str(problem)]
    if errors:
        raise invalid(errors)
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


def own_voice_mail(ctx: Ctx, vm: Record) -> bool:
    return vm["endpoint"].startswith("Reception#") or vm["endpoint"] == f"Employee#{ctx.me['id']}"


def endpoint_number(ctx: Ctx, endpoint: str) -> str | None:
    kind, _, raw = endpoint.partition("#")
    if kind == "Reception" and raw.isdigit() and int(raw) in ctx.company.receptions:
        return ctx.company.receptions[int(raw)]["phone_number"]["number"]
    employee = ctx.company.employees.get(int(raw)) if kind == "Employee" and raw.isdigit() else None
    return employee and employee["number"]


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
    lambda ctx, r: contact_json(r),
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


def get_m2m_subscription_ids(ctx: Ctx) -> list[int]:
    return sorted(ctx.company.m2m_subscriptions)


# ---------------------------------------------------------------------------------------------- employees

EMPLOYEE_CREATE: Spec = {
    "name": (present, True),
    "email": (nullable(email), False),
    "number": (nullable(phone), False),
    "admin": (boolean, False),
}
EMPLOYEE_UPDATE: Spec = {
    "name": (present, False),
    "do_not_disturb": (boolean, False),
    "dnd_timeout_at": (nullable(timestamp), False),
    "cloak_reception_id": (nullable(integer), False),
}


def check_unique_number(ctx: Ctx, number: str | None) -> None:
    if number and any(e["number"] == number for e in ctx.company.employees.values()):
        raise invalid({"number": ["has already been taken"]})


def create_employee(ctx: Ctx) -> Any:
    fields = validate(unwrap(ctx.body, "employee"), EMPLOYEE_CREATE)
    check_unique_number(ctx, fields.get("number"))
    new_id = ctx.state.new_id("employees")
    ctx.company.employees[new_id] = {
        "id": new_id,
        "name": fields["name"],
        "number": fields.get("number"),
        "admin": fields.get("admin", False),
        "company_id": ctx.company.id,
        "dnd_timeout_at": None,
        "do_not_disturb": False,
        "features": ["switch"],
        "speed_dial": {"digit": 10 + new_id % 90},
        "_presence": "unknown",
        "_cloak_reception_id": None,
        "_email": fields.get("email"),
    }
    return {"employee": employee_json(ctx, ctx.company.employees[new_id])}


def apply_employee_update(ctx: Ctx, employee: Record) -> Any:
    fields = validate(unwrap(ctx.body, "employee"), EMPLOYEE_UPDATE, partial=True)
    cloak = fields.pop("cloak_reception_id", employee["_cloak_reception_id"])
    if cloak is not None and cloak not in ctx.company.receptions:
        raise invalid({"cloak_reception_id": ["does not exist"]})
    employee.update(fields, _cloak_reception_id=cloak)
    return {"employee": employee_json(ctx, employee)}


def update_employee(ctx: Ctx) -> Any:
    return apply_employee_update(ctx, ctx.find("employees", ctx.params["id"], "Employee"))


def delete_employee(ctx: Ctx) -> Any:
    employee = ctx.find("employees", ctx.params["id"], "Employee")
    if employee is ctx.me:
        raise invalid({"id": ["cannot delete the authenticated employee"]})
    del ctx.company.employees[employee["id"]]
    for group in ctx.company.employee_groups.values():
        group["employee_ids"] = [i for i in group["employee_ids"] if i != employee["id"]]
    return {"message": "Employee deleted successfully"}


def send_sms(ctx: Ctx, employees: Iterable[Record], body: str) -> dict[str, int]:
    """SMS never leave the sandbox: they are appended to the outbox with their segment cost."""
    recipients = [
        {"employee_id": e["id"], "name": e["name"], "number": e["number"]} for e in employees if e["number"]
    ]
    info = sms_segments(body)
    if recipients:
        ctx.state.outbox.append(
            {
                "kind": "sms",
                "at": now_iso(),
                "from_employee_id": ctx.me["id"],
                "recipients": recipients,
                "body": body,
                "encoding": info.encoding,
                "segments_per_recipient": info.segments,
                "total_segments": info.segments * len(recipients),
            }
        )
    return {"sent": len(recipients)}


def send_employee_message(ctx: Ctx) -> Any:
    employee = ctx.find("employees", ctx.params["id"], "Employee")
    body = validate(unwrap(ctx.body, "message"), {"body": (present, True)})["body"]
    return send_sms(ctx, [employee], body)


# ---------------------------------------------------------------------------------------------- groups

GROUP_FIELDS: Spec = {"name": (present, True), "employee_ids": (id_list, False)}


def group_fields(ctx: Ctx, *, partial: bool) -> dict[str, Any]:
    fields = validate(unwrap(ctx.body, "employee_group"), GROUP_FIELDS, partial=partial)
    unknown = [i for i in fields.get("employee_ids", []) if i not in ctx.company.employees]
    if unknown:
        raise invalid({"employee_ids": [f"contains unknown employee {unknown[0]}"]})
    if "employee_ids" in fields:
        fields["employee_ids"] = sorted(set(fields["employee_ids"]))
    return fields


def create_employee_group(ctx: Ctx) -> Any:
    fields = group_fields(ctx, partial=False)
    new_id = ctx.state.new_id("employee_groups")
    digit = 30 + len(ctx.company.employee_groups)
    group = {
        "id": new_id,
        "name": fields["name"],
        "employee_ids": fields.get("employee_ids", []),
        "speed_dial": {"digit": digit},
    }
    ctx.company.employee_groups[new_id] = group
    return group_json(ctx, group)


def update_employee_group(ctx: Ctx) -> Any:
    group = ctx.find("employee_groups", ctx.params["id"], "Employee group")
    group.update(group_fields(ctx, partial=True))
    return group_json(ctx, group)


def join_employee_group(ctx: Ctx) -> Any:
    group = ctx.find("employee_groups", ctx.params["employee_group_id"], "Employee group")
    group["employee_ids"] = sorted({*group["employee_ids"], ctx.me["id"]})
    return group_json(ctx, group)


def leave_employee_group(ctx: Ctx) -> Any:
    group = ctx.find("employee_groups", ctx.params["employee_group_id"], "Employee group")
    group["employee_ids"] = [i for i in group["employee_ids"] if i != ctx.me["id"]]
    return {}


def send_employee_group_message(ctx: Ctx) -> Any:
    group = ctx.find("employee_groups", ctx.params["employee_group_id"], "Employee group")
    body = validate(top_level(ctx.body), {"body": (present, True)})["body"]
    members = [ctx.company.employees[i] for i in group["employee_ids"] if i in ctx.company.employees]
    return send_sms(ctx, members, body)


# ---------------------------------------------------------------------------------- receptions & statistics

FINISHED = ("answered", "missed", "voicemail", "orphaned")
PHASES = ("open", "closed", "backup")


def phases(raw: Any) -> set[str]:
    chosen = {p.strip() for p in text(raw).split(",") if p.strip()}
    if not chosen or not chosen <= set(PHASES):
        raise Problem("must be a comma separated list of open, closed, backup")
    return chosen


def seconds(start: str, end: str | None) -> float:
    return (ts(end) - ts(start)).total_seconds() if end else 0.0


def average(values: list[float]) -> int:
    return round(sum(values) / len(values)) if values else 0


def get_reception_statistics(ctx: Ctx) -> Any:
    reception = ctx.find("receptions", ctx.params["id"], "Reception")
    q = ctx.query_fields(
        {
            "answer_target": (non_negative, True),
            "from_time": (parse_time, True),
            "to_time": (parse_time, True),
            "phase": (phases, False),
        }
    )
    wanted = q.get("phase", set(PHASES))
    calls = [
        c
        for c in ctx.company.calls.values()
        if c["endpoint"] == reception["endpoint"]
        and c["direction"] == "incoming"
        and c["status"] in FINISHED
        and c["_phase"] in wanted
        and q["from_time"] <= ts(c["started_at"]) <= q["to_time"]
    ]
    answered = [c for c in calls if c["status"] == "answered"]
    missed = [c for c in calls if c["status"] != "answered"]
    waits = [seconds(c["started_at"], c["answered_at"]) for c in answered]
    target = q["answer_target"]
    return {
        "statistics": {
            "total": len(calls),
            "answered": len(answered),
            "missed": len(missed),
            "average_answer_time": average(waits),
            "average_duration": average(
                [c["talk_duration"] for c in answered if c["talk_duration"] is not None]
            ),
            "within_target": {
                "answered": sum(w <= target for w in waits),
                "missed": sum(seconds(c["started_at"], c["ended_at"]) <= target for c in missed),
            },
        }
    }


def get_reception_status(ctx: Ctx) -> Any:
    reception = ctx.find("receptions", ctx.params["id"], "Reception")
    live = [
        c["status"]
        for c in ctx.company.calls.values()
        if c["endpoint"] == reception["endpoint"] and c["ended_at"] is None
    ]
    return {status: live.count(status) for status in ("new", "ringing", "answered")}


ENDPOINT_REF = re.compile(r"(Reception|Employee)#(\d+)")


def statistics_query(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query_fields(
        {
            "endpoint_type": (one_of("reception", "employee"), True),
            "group_by": (one_of("date", "endpoint"), True),
            "start": (day, True),
            "end": (day, True),
            "endpoint": (text, False),
        }
    )
    if q["end"] < q["start"] or (q["end"] - q["start"]).days > 366:
        raise invalid({"end": ["must be on or after start and at most 366 days later"]})
    refs = [e.strip() for e in q.get("endpoint", "").split(",") if e.strip()]
    kind = q["endpoint_type"].capitalize()
    if any(not (m := ENDPOINT_REF.fullmatch(ref)) or m.group(1) != kind for ref in refs):
        raise invalid(
            {"endpoint": [f"must be {kind}#<id> endpoints; endpoints of different types cannot be mixed"]}
        )
    q["endpoints"] = refs
    return q


def call_endpoints(call: Record, endpoint_type: str) -> set[str]:
    """Which endpoints of a type a call counts for (employees: their own calls and answered calls)."""
    endpoints = {call["endpoint"]} if call["endpoint_type"] == endpoint_type else set()
    if endpoint_type == "employee" and call["answered_by"]:
        endpoints.add(f"Employee#{call['answered_by']['id']}")
    return endpoints


def stats_row(calls: list[Record]) -> Record:
    return {
        "calls": len(calls),
        "incoming": sum(c["direction"] == "incoming" for c in calls),
        "outgoing": sum(c["direction"] == "outgoing" for c in calls),
        "answered": sum(c["status"] == "answered" for c in calls),
        "missed": sum(c["status"] in ("missed", "voicemail", "orphaned") for c in calls),
        "talk_duration": sum(c["talk_duration"] or 0 for c in calls),
    }


def get_statistics(ctx: Ctx) -> Any:
    q = statistics_query(ctx)
    kind = q["endpoint_type"]
    names = (
        {f"Reception#{r['id']}": r["name"] for r in ctx.company.receptions.values()}
        if kind == "reception"
        else {f"Employee#{e['id']}": e["name"] for e in ctx.company.employees.values()}
    )
    endpoints = q["endpoints"] or sorted(names)
    tagged = [(c, call_endpoints(c, kind) & set(endpoints)) for c in ctx.company.calls.values()]
    tagged = [
        (c, eps)
        for c, eps in tagged
        if eps and q["start"] <= ts(c["started_at"]).astimezone(CPH).date() <= q["end"]
    ]
    if q["group_by"] == "endpoint":
        rows = [
            {
                "endpoint": ep,
                "endpoint_name": names.get(ep),
                **stats_row([c for c, eps in tagged if ep in eps]),
            }
            for ep in endpoints
        ]
    else:
        days = [q["start"] + timedelta(days=n) for n in range((q["end"] - q["start"]).days + 1)]
        rows = [
            {
                "date": d.isoformat(),
                "endpoint_type": kind,
                **stats_row([c for c, _ in tagged if ts(c["started_at"]).astimezone(CPH).date() == d]),
            }
            for d in days
        ]
    return {"rows": rows}


def get_smiley_statistics(ctx: Ctx) -> Any:
    q = ctx.query_fields(
        {
            "from_time": (parse_time, True),
            "to_time": (parse_time, True),
            "endpoint": (text, False),
            "reception_id": (integer, False),
            "employee_id": (integer, False),
        }
    )
    picked = [
        s
        for s in ctx.company.smileys.values()
        if q["from_time"] <= ts(s["rated_at"]) <= q["to_time"]
        and all(s[key] == q[key] for key in ("endpoint", "reception_id", "employee_id") if key in q)
    ]
    scores = [s["net_promoter_score"] for s in picked]
    nps = (
        round(100 * (sum(n >= 9 for n in scores) - sum(n <= 6 for n in scores)) / len(scores), 1)
        if scores
        else 0
    )
    kinds = {k: sum(s["kind"] == k for s in picked) for k in ("positive", "neutral", "negative")}
    return {
        "statistics": {
            "total": len(picked),
            **kinds,
            "net_promoter_score": nps,
            "happy": sum(s["rating"] == 1 for s in picked),
            "angry": sum(s["rating"] == 0 for s in picked),
            "commented": sum(bool(s["comment"]) for s in picked),
        }
    }


# ---------------------------------------------------------------------------------------------- voicemails

VOICE_MAIL_UPDATE: Spec = {"heard": (boolean, False), "comment": (text, False)}


def visible_voice_mail(ctx: Ctx) -> Record:
    vm = ctx.company.voice_mails.get(ctx.params["id"])
    if vm is None or not own_voice_mail(ctx, vm):
        raise not_found("Voice mail")
    return vm


def update_voice_mail(ctx: Ctx) -> Any:
    vm = visible_voice_mail(ctx)
    vm.update(validate(unwrap(ctx.body, "voice_mail"), VOICE_MAIL_UPDATE, partial=True))
    return voice_mail_json(ctx, vm)


def get_voice_mail(ctx: Ctx) -> Any:
    return voice_mail_json(ctx, visible_voice_mail(ctx))


def delete_voice_mail(ctx: Ctx) -> Any:
    del ctx.company.voice_mails[visible_voice_mail(ctx)["id"]]
    return {}


@cache
def voicemail_mp3() -> bytes:
    return resources.files("relatel_mcp.sandbox").joinpath("voicemail.mp3").read_bytes()


def download_voice_mail(ctx: Ctx) -> Response:
    visible_voice_mail(ctx)
    return Response(voicemail_mp3(), media_type="audio/mpeg")


# ---------------------------------------------------------------------------------------------- contacts

CONTACT_FIELDS: Spec = {"name": (present, True), "number": (phone, True), "email": (nullable(email), False)}


def create_contact(ctx: Ctx) -> Any:
    fields = validate(unwrap(ctx.body, "contact"), CONTACT_FIELDS)
    new_id = ctx.state.new_id("contacts")
    ctx.company.contacts[new_id] = {
        "id": new_id,
        "name": fields["name"],
        "number": fields["number"],
        "email": fields.get("email"),
    }
    return {"contact": contact_json(ctx.company.contacts[new_id])}


def update_contact(ctx: Ctx) -> Any:
    contact = ctx.find("contacts", ctx.params["id"], "Contact")
    contact.update(validate(unwrap(ctx.body, "contact"), CONTACT_FIELDS, partial=True))
    return {"contact": contact_json(contact)}


def delete_contact(ctx: Ctx) -> Any:
    contact_id = ctx.find("contacts", ctx.params["id"], "Contact")["id"]
    del ctx.company.contacts[contact_id]
    for comment_id in [i for i, c in ctx.company.comments.items() if c["contact_id"] == contact_id]:
        del ctx.company.comments[comment_id]
    return {"message": "Contact deleted successfully"}


def get_contact_by_number(ctx: Ctx) -> Any:
    contact = contact_for(ctx, ctx.params["number"])
    if contact is None:
        raise not_found("Contact")
    return {"contact": contact}


def get_contact_comments(ctx: Ctx) -> Any:
    contact_id = ctx.find("contacts", ctx.params["contact_id"], "Contact")["id"]
    return {"comments": [c for c in ctx.company.comments.values() if c["contact_id"] == contact_id]}


def create_contact_comment(ctx: Ctx) -> Any:
    contact_id = ctx.find("contacts", ctx.params["contact_id"], "Contact")["id"]
    body = validate(unwrap(ctx.body, "comment"), {"body": (present, True)})["body"]
    new_id = ctx.state.new_id("comments")
    comment = {
        "id": new_id,
        "body": body,
        "created_at": now_iso(),
        "employee_id": ctx.me["id"],
        "contact_id": contact_id,
    }
    ctx.company.comments[new_id] = comment
    return {"comment": comment}


def delete_contact_comment(ctx: Ctx) -> Any:
    contact_id = ctx.find("contacts", ctx.params["contact_id"], "Contact")["id"]
    comment = ctx.company.comments.get(ctx.params["id"])
    if comment is None or comment["contact_id"] != contact_id:
        raise not_found("Comment")
    del ctx.company.comments[comment["id"]]
    return {"message": "Comment deleted successfully"}


# ---------------------------------------------------------------------------------------------- calls

DIAL_FIELDS: Spec = {
    "to_number": (phone, True),
    "restrict_to": (one_of("", "web_call", "mobile"), False),
    "cloak_reception_id": (nullable(integer), False),
}


def initiate_call(ctx: Ctx) -> Any:
    """Click-to-call never rings anyone: it is recorded in the outbox."""
    fields = validate(top_level(ctx.body), DIAL_FIELDS)
    cloak_id = fields.get("cloak_reception_id")
    if cloak_id is not None and cloak_id not in ctx.company.receptions:
        raise invalid({"cloak_reception_id": ["does not exist"]})
    cloak = ctx.company.receptions.get(cloak_id if cloak_id is not None else ctx.me["_cloak_reception_id"])
    ctx.state.outbox.append(
        {
            "kind": "call",
            "at": now_iso(),
            "employee_id": ctx.me["id"],
            "from_number": cloak["phone_number"]["number"] if cloak else ctx.me["number"],
            "to_number": fields["to_number"],
            "restrict_to": fields.get("restrict_to", ""),
            "cloak_reception_id": cloak_id,
        }
    )
    return {"message": "Call initiated successfully"}


# ---------------------------------------------------------------------------------------------- M2M & orders

PRODUCTS = ("m2m-small-one", "m2m-medium", "m2m-large")
ICC = re.compile(r"\d{19,20}")


def icc(value: Any) -> str:
    if not ICC.fullmatch(text(value)):
        raise Problem("must be 19-20 digits")
    return value


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
    by_id = subs.get(fields.get("subscription_id"))
    by_number = next((s for s in subs.values() if s["_phone_number"] == fields.get("phone_number")), None)
    for key, match in (("subscription_id", by_id), ("phone_number", by_number)):
        if key in fields and match is None:
            raise invalid({key: ["does not exist"]})
    if by_id and by_number and by_id is not by_number:
        raise invalid({"phone_number": ["does not belong to subscription_id"]})
    return by_id or by_number


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


# ---------------------------------------------------------------------------------------------- routing

Handler = Callable[[Ctx], Any]


def current_employee(ctx: Ctx) -> Any:
    return {"employee": employee_json(ctx, ctx.me)}


ORDERS_BY_OPERATION = {operation: order_handler(kind) for operation, kind in ORDER_KINDS.items()}
get_contact = getter("contacts", "Contact", lambda ctx, r: contact_json(r), "contact")

# fmt: off
OPERATIONS: list[tuple[str, str, str, Handler]] = [  # operationId, method, path, handler
    ("getOrders", "GET", "/api/v2/orders", lister(ORDERS)),
    ("getOrder", "GET", "/api/v2/orders/{id:int}", getter("orders", "Order", plain_json)),
    ("getM2MSubscriptionIds", "GET", "/api/v2/m2m/subscriptions", get_m2m_subscription_ids),
    ("getM2MSubscription", "GET", "/api/v2/m2m/subscriptions/{id:int}",
     getter("m2m_subscriptions", "Subscription", plain_json)),
    ("updateM2MSubscription", "PATCH", "/api/v2/m2m/subscriptions/{id:int}", update_m2m_subscription),
    ("createM2MActivationOrder", "POST", "/api/v2/m2m/activation_orders",
     ORDERS_BY_OPERATION["createM2MActivationOrder"]),
    ("createM2MCancellationOrder", "POST", "/api/v2/m2m/cancellation_orders",
     ORDERS_BY_OPERATION["createM2MCancellationOrder"]),
    ("getM2MConsumptionCsv", "GET", "/api/v2/m2m/consumption", get_m2m_consumption),
    ("createSubscriptionCancellationOrder", "POST", "/api/v2/subscriptions/cancellation_orders",
     ORDERS_BY_OPERATION["createSubscriptionCancellationOrder"]),
    ("createM2MProductChangeOrder", "POST", "/api/v2/m2m/product_change_orders",
     ORDERS_BY_OPERATION["createM2MProductChangeOrder"]),
    ("getEmployees", "GET", "/api/v2/employees", lister(EMPLOYEES)),
    ("createEmployee", "POST", "/api/v2/employees", create_employee),
    ("getEmployee", "GET", "/api/v2/employees/{id:int}",
     getter("employees", "Employee", employee_json, "employee")),
    ("updateEmployee", "PUT", "/api/v2/employees/{id:int}", update_employee),
    ("deleteEmployee", "DELETE", "/api/v2/employees/{id:int}", delete_employee),
    ("getCurrentEmployee", "GET", "/api/v2/employee", current_employee),
    ("updateCurrentEmployee", "PUT", "/api/v2/employee", lambda ctx: apply_employee_update(ctx, ctx.me)),
    ("sendEmployeeMessage", "POST", "/api/v2/employees/{id:int}/message", send_employee_message),
    ("getEmployeeGroups", "GET", "/api/v2/employee_groups", lister(GROUPS)),
    ("createEmployeeGroup", "POST", "/api/v2/employee_groups", create_employee_group),
    ("getEmployeeGroup", "GET", "/api/v2/employee_groups/{id:int}",
     getter("employee_groups", "Employee group", group_json)),
    ("updateEmployeeGroup", "PUT", "/api/v2/employee_groups/{id:int}", update_employee_group),
    ("joinEmployeeGroup", "POST", "/api/v2/employee_groups/{employee_group_id:int}/join",
     join_employee_group),
    ("leaveEmployeeGroup", "POST", "/api/v2/employee_groups/{employee_group_id:int}/leave",
     leave_employee_group),
    ("sendEmployeeGroupMessage", "POST", "/api/v2/employee_groups/{employee_group_id:int}/message",
     send_employee_group_message),
    ("getReceptions", "GET", "/api/v2/receptions", lister(RECEPTIONS)),
    ("getReception", "GET", "/api/v2/receptions/{id:int}", getter("receptions", "Reception", plain_json)),
    ("getReceptionStatistics", "GET", "/api/v2/receptions/{id:int}/statistics", get_reception_statistics),
    ("getReceptionCallStatus", "GET", "/api/v2/receptions/{id:int}/status", get_reception_status),
    ("getStatistics", "GET", "/api/v2/statistics", get_statistics),
    ("getVoiceMails", "GET", "/api/v2/voice_mails", lister(VOICE_MAILS)),
    ("getVoiceMail", "GET", "/api/v2/voice_mails/{id:int}", get_voice_mail),
    ("updateVoiceMail", "PUT", "/api/v2/voice_mails/{id:int}", update_voice_mail),
    ("deleteVoiceMail", "DELETE", "/api/v2/voice_mails/{id:int}", delete_voice_mail),
    ("downloadVoiceMail", "GET", "/api/v2/voice_mails/{id:int}/sound", download_voice_mail),
    ("getChats", "GET", "/api/v2/chats", lister(CHATS)),
    ("getChat", "GET", "/api/v2/chats/{uuid}", getter("chats", "Chat", plain_json, "chat", key="uuid")),
    ("getContacts", "GET", "/api/v2/contacts", lister(CONTACTS)),
    ("createContact", "POST", "/api/v2/contacts", create_contact),
    ("getContact", "GET", "/api/v2/contacts/{id:int}", get_contact),
    ("updateContact", "PUT", "/api/v2/contacts/{id:int}", update_contact),
    ("deleteContact", "DELETE", "/api/v2/contacts/{id:int}", delete_contact),
    ("getContactByNumber", "GET", "/api/v2/contacts/by_number/{number}", get_contact_by_number),
    ("getContactComments", "GET", "/api/v2/contacts/{contact_id:int}/comments", get_contact_comments),
    ("createContactComment", "POST", "/api/v2/contacts/{contact_id:int}/comments", create_contact_comment),
    ("deleteContactComment", "DELETE", "/api/v2/contacts/{contact_id:int}/comments/{id:int}",
     delete_contact_comment),
    ("getCalls", "GET", "/api/v2/calls", lister(CALLS)),
    ("getCall", "GET", "/api/v2/calls/{uuid}", getter("calls", "Call", call_json, "call", key="uuid")),
    ("initiateCall", "POST", "/api/v2/switch/dial", initiate_call),
    ("getSmileys", "GET", "/api/v2/smileys", lister(SMILEYS)),
    ("getSmileyStatistics", "GET", "/api/v2/smileys/statistics", get_smiley_statistics),
    ("getMessages", "GET", "/api/v2/messages", lister(MESSAGES)),
    ("getTags", "GET", "/api/v2/tags", lister(TAGS)),
]
# fmt: on


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None


async def build_context(request: Request, operation_id: str) -> Ctx:
    """Authenticate (401), enforce the operation's requirement (403) and read the body (400)."""
    state: SandboxState = request.app.state.sandbox
    multi = parse_qs(request.url.query, keep_blank_values=True)
    identity = identify(request_token(request.headers, multi))
    company = state.companies.get(identity[0]) if identity else None
    me = company.employees.get(identity[1]) if company and identity else None
    if company is None or me is None:
        raise ApiError(401, "unauthorized")
    requirement = REQUIREMENTS.get(operation_id)
    if requirement and not requirement.met(company, me):
        raise ApiError(403, requirement.message)
    body = await json_body(request) if request.method in ("POST", "PUT", "PATCH") else None
    query = {k: v[-1] for k, v in multi.items()}
    base_url = str(request.base_url).rstrip("/")
    return Ctx(state, company, me, dict(request.path_params), query, multi, body, base_url)


def api_endpoint(operation_id: str, handler: Handler) -> Callable:
    async def run(request: Request) -> Response:
        try:
            result = handler(await build_context(request, operation_id))
        except ApiError as error:
            return error.response()
        return result if isinstance(result, Response) else JSONResponse(result)

    run.__name__ = operation_id
    return run


# ---------------------------------------------------------------------------------------------- control & log


def control(handler: Callable[[Request, SandboxState], Any]) -> Callable:
    """Out-of-band endpoints: no auth, but only from loopback."""

    async def run(request: Request) -> Response:
        host = request.client.host if request.client else ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("testclient", "localhost")
        if not loopback:
            return JSONResponse(error_body(403, "control endpoints are loopback only"), status_code=403)
        result = handler(request, request.app.state.sandbox)
        if hasattr(result, "__await__"):
            result = await result
        return result if isinstance(result, Response) else JSONResponse(result)

    return run


def describe(request: Request, state: SandboxState) -> Any:
    return {
        "name": "relatel-mcp sandbox",
        "sandbox": True,
        "api": "Relatel API 2.1.2 (simulated)",
        "base_url": str(request.base_url).rstrip("/"),
        "demo_tokens": DEMO_TOKENS,
        "tenant_tokens": "sandbox-tenant-<1-64 of A-Za-z0-9_-> acts as sandbox-admin",
        "control": [
            "GET /_sandbox/outbox",
            "GET|DELETE /_sandbox/requests",
            "POST /_sandbox/reset",
            "GET|POST|DELETE /_sandbox/faults",
        ],
    }


def clear_requests(request: Request, state: SandboxState) -> Any:
    state.requests.clear()
    return {"requests": []}


def reset(request: Request, state: SandboxState) -> Any:
    state.reset()
    return {"reset": True}


async def add_fault(request: Request, state: SandboxState) -> Any:
    try:
        fault = fault_mod.parse_fault(json.loads(await request.body() or b"null"))
    except ValueError as error:
        errors = getattr(error, "errors", {"fault": ["must be a JSON object"]})
        return JSONResponse(error_body(422, "Invalid fault", errors), status_code=422)
    state.faults.append(fault)
    return {"fault": fault.as_dict(), "faults": [f.as_dict() for f in state.faults]}


def clear_faults(request: Request, state: SandboxState) -> Any:
    state.faults.clear()
    return {"faults": []}


CONTROL_ROUTES = [
    ("/", "GET", describe),
    ("/_sandbox/outbox", "GET", lambda request, state: {"outbox": state.outbox}),
    ("/_sandbox/requests", "GET", lambda request, state: {"requests": state.requests}),
    ("/_sandbox/requests", "DELETE", clear_requests),
    ("/_sandbox/reset", "POST", reset),
    ("/_sandbox/faults", "GET", lambda request, state: {"faults": [f.as_dict() for f in state.faults]}),
    ("/_sandbox/faults", "POST", add_fault),
    ("/_sandbox/faults", "DELETE", clear_faults),
]


class RequestLog:
    """ASGI middleware recording every /api/ request in arrival order; tokens only as fingerprints."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        raw = await read_all(receive)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record: Record = {
            "method": scope["method"],
            "path": scope["path"],
            "query": {k: v if k != "access_token" else ["[redacted]"] for k, v in query.items()},
            "body": parse_json(raw),
            "token_fp": token_fingerprint(request_token(headers, query)),
            "status": None,
            "fault": None,
        }
        self.state.requests.append(record)
        scope[fault_mod.RECORD_KEY] = record

        async def logged_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay(raw, receive), logged_send)
        except Exception:
            record["status"] = record["status"] or 500
            raise


async def read_all(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False) and message["type"] == "http.request"
    return b"".join(chunks)


def replay(raw: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return again


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


async def http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    message = {404: "Not found", 405: "Method not allowed"}.get(status, "error")
    return JSONResponse(error_body(status, message), status_code=status)


def create_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox ASGI app; `app.state.sandbox` is its SandboxState (a fresh seed if none is given)."""
    state = state or SandboxState()
    routes = [
        Route(path, api_endpoint(op, handler), methods=[method]) for op, method, path, handler in OPERATIONS
    ]
    routes += [Route(path, control(fn), methods=[method]) for path, method, fn in CONTROL_ROUTES]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestLog, state=state), Middleware(fault_mod.FaultInjector, state=state)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.sandbox = state
    return app
