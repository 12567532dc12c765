"""Arguments of the call, voicemail, chat, smiley, message and tag tools: the company's traffic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from .common import Args, Destination, Endpoint, Id, Limit, Limit100, Phone, Timestamp, Uuid


class ListCalls(Args):
    limit: Limit100 | None = None
    endpoint: Endpoint | None = None
    number: Phone | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    # The contract types the filter as a string; a call's `status` shows these values.
    status: str | None = Field(None, description="e.g. missed, answered, voicemail, new, ringing, orphaned")
    started_at_gt_or_eq: Timestamp | None = None
    started_at_lt_or_eq: Timestamp | None = None
    ended_at_gt_or_eq: Timestamp | None = None
    ended_at_lt_or_eq: Timestamp | None = None


class ByUuid(Args):
    uuid: Uuid


class InitiateCall(Args):
    to_number: Destination
    # The contract's values; its "" (every device) is the same as leaving it out.
    restrict_to: Literal["web_call", "mobile", ""] | None = Field(
        None, description="ring only this device of yours; default all"
    )
    # The contract types it as a string; agents know it as a reception's integer id.
    cloak_reception_id: Annotated[Id, PlainSerializer(str)] | None = Field(
        None, description="call from this reception's number; default: your caller-id"
    )


class ListVoicemails(Args):
    created_at_lt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit100 | None = None
    number: Phone | None = None


class UpdateVoicemail(Args):
    id: Id
    heard: bool | None = None
    comment: str | None = None

    at_least_one = ("heard", "comment")


class ListChats(Args):
    updated_at_gt_or_eq: Timestamp | None = None
    limit: Limit | None = None


class ListSmileys(Args):
    limit: Limit | None = None
    number: Phone | None = None
    rated_at_lt_or_eq: Timestamp | None = None
    rated_at_gt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    employee_id: Id | None = None
    # The contract leaves the filter open; a smiley's `rating` is 0 or 1.
    rating: int | None = Field(None, description="0 angry, 1 happy")
    # Beyond the contract: the API filters on the parameter's presence, so `false` would do the
    # opposite of what it says; only `true` is taken.
    commented: Literal[True] | None = Field(None, description="true: only those with a comment")


class ListMessages(Args):
    created_at_lt_or_eq: Timestamp | None = None
    created_at_gt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit | None = None


class ListTags(Args):
    name: str | None = None
