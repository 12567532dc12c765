"""Handlers for the company's people: employees (and their SMS), employee groups, contacts and
their comments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from relatel_mcp.core.sms import sms_segments
from relatel_mcp.sandbox.checks import (
    Spec,
    boolean,
    email,
    id_list,
    integer,
    invalid,
    not_found,
    nullable,
    phone,
    present,
    timestamp,
    top_level,
    unwrap,
    validate,
)
from relatel_mcp.sandbox.context import Ctx
from relatel_mcp.sandbox.data import Record, now_iso
from relatel_mcp.sandbox.render import contact_for, contact_json, employee_json, group_json

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
    ctx.check_cloak(cloak)
    employee.update(fields, _cloak_reception_id=cloak)
    return {"employee": employee_json(ctx, employee)}


def update_employee(ctx: Ctx) -> Any:
    return apply_employee_update(ctx, ctx.find("employees", ctx.params["id"], "Employee"))


def current_employee(ctx: Ctx) -> Any:
    return {"employee": employee_json(ctx, ctx.me)}


def update_current_employee(ctx: Ctx) -> Any:
    return apply_employee_update(ctx, ctx.me)


def delete_employee(ctx: Ctx) -> Any:
    employee = ctx.find("employees", ctx.params["id"], "Employee")
    if employee is ctx.me:
        raise invalid({"id": ["cannot delete the authenticated employee"]})
    del ctx.company.employees[employee["id"]]
    for group in ctx.company.employee_groups.values():
        drop_member(group, employee["id"])
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


def body_text(data: dict[str, Any]) -> str:
    """The required `body` of a message or comment."""
    return validate(data, {"body": (present, True)})["body"]


def send_employee_message(ctx: Ctx) -> Any:
    employee = ctx.find("employees", ctx.params["id"], "Employee")
    body = body_text(unwrap(ctx.body, "message"))
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


def group_in_path(ctx: Ctx) -> Record:
    return ctx.find("employee_groups", ctx.params["employee_group_id"], "Employee group")


def drop_member(group: Record, employee_id: int) -> None:
    group["employee_ids"] = [i for i in group["employee_ids"] if i != employee_id]


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
    group = group_in_path(ctx)
    group["employee_ids"] = sorted({*group["employee_ids"], ctx.me["id"]})
    return group_json(ctx, group)


def leave_employee_group(ctx: Ctx) -> Any:
    drop_member(group_in_path(ctx), ctx.me["id"])
    return {}


def send_employee_group_message(ctx: Ctx) -> Any:
    group = group_in_path(ctx)
    body = body_text(top_level(ctx.body))
    members = [ctx.company.employees[i] for i in group["employee_ids"] if i in ctx.company.employees]
    return send_sms(ctx, members, body)


# ---------------------------------------------------------------------------------------------- contacts

CONTACT_FIELDS: Spec = {"name": (present, False), "number": (phone, False), "email": (nullable(email), False)}


def create_contact(ctx: Ctx) -> Any:
    fields = validate(unwrap(ctx.body, "contact"), CONTACT_FIELDS)
    if not fields.get("name") and not fields.get("number"):
        raise invalid({"name": ["can't be blank"], "number": ["can't be blank"]})
    new_id = ctx.state.new_id("contacts")
    ctx.company.contacts[new_id] = {
        "id": new_id,
        "name": fields.get("name"),
        "number": fields.get("number"),
        "email": fields.get("email"),
    }
    return {"contact": contact_json(ctx, ctx.company.contacts[new_id])}


def update_contact(ctx: Ctx) -> Any:
    contact = ctx.find("contacts", ctx.params["id"], "Contact")
    contact.update(validate(unwrap(ctx.body, "contact"), CONTACT_FIELDS, partial=True))
    return {"contact": contact_json(ctx, contact)}


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


def contact_id_in_path(ctx: Ctx) -> int:
    return ctx.find("contacts", ctx.params["contact_id"], "Contact")["id"]


def get_contact_comments(ctx: Ctx) -> Any:
    contact_id = contact_id_in_path(ctx)
    return {"comments": [c for c in ctx.company.comments.values() if c["contact_id"] == contact_id]}


def create_contact_comment(ctx: Ctx) -> Any:
    contact_id = contact_id_in_path(ctx)
    body = body_text(unwrap(ctx.body, "comment"))
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
    contact_id = contact_id_in_path(ctx)
    comment = ctx.company.comments.get(ctx.params["id"])
    if comment is None or comment["contact_id"] != contact_id:
        raise not_found("Comment")
    del ctx.company.comments[comment["id"]]
    return {"message": "Comment deleted successfully"}
