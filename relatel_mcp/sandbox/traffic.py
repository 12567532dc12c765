"""Handlers for the switch's traffic that is more than a list: voicemails (read, update, delete, the
sound file) and click-to-call, which never rings anyone.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relatel_mcp.sandbox.checks import (
    Spec,
    boolean,
    integer,
    not_found,
    nullable,
    one_of,
    phone,
    text,
    top_level,
    unwrap,
    validate,
)
from relatel_mcp.sandbox.context import Ctx
from relatel_mcp.sandbox.data import Record, now_iso
from relatel_mcp.sandbox.recordings import recording
from relatel_mcp.sandbox.render import own_voice_mail, voice_mail_json

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


def download_voice_mail(ctx: Ctx) -> Response:
    """A real MP3 that plays for the voicemail's `duration` (recordings.py)."""
    return Response(recording(visible_voice_mail(ctx).get("duration")), media_type="audio/mpeg")


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
    ctx.check_cloak(cloak_id)
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
