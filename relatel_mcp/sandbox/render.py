"""Records -> API JSON. Derived fields (contact matches, group membership and presence, sound URLs,
a call's voicemail and smiley) are computed here at render time, so they never go stale.
"""

from __future__ import annotations

from relatel_mcp.sandbox.context import Ctx, public
from relatel_mcp.sandbox.data import Record, format_number


def sound(ctx: Ctx, path: str) -> Record:
    return {"formats": ["audio/mpeg"], "url": f"{ctx.base_url}{path}"}


def contact_json(ctx: Ctx, record: Record) -> Record:
    return {**public(record), "number_formatted": format_number(record["number"])}


def contact_for(ctx: Ctx, number: str | None) -> Record | None:
    match = next((c for c in ctx.company.contacts.values() if number and c["number"] == number), None)
    return contact_json(ctx, match) if match else None


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


def own_voice_mail(ctx: Ctx, vm: Record) -> bool:
    """Whether the employee sees a voicemail: every reception's, and only their own personal ones."""
    return vm["endpoint"].startswith("Reception#") or vm["endpoint"] == f"Employee#{ctx.me['id']}"


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
