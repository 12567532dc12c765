"""Arguments of the call, voicemail, chat, smiley, message and tag tools: the company's traffic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema

from .common import Args, Destination, Endpoint, Id, Limit, Phone, Timestamp, Uuid


class ListCalls(Args):
    limit: Limit | None = None
    endpoint: Endpoint | None = None
    number: Phone | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    status: Literal["new", "ringing", "orphaned", "missed", "voicemail", "answered"] | None = None
    started_at_gt_or_eq: Timestamp | None = None
    started_at_lt_or_eq: Timestamp | None = None
    ended_at_gt_or_eq: Timestamp | None = None
    ended_at_lt_or_eq: Timestamp | None = None


class ByUuid(Args):
    uuid: Uuid


class InitiateCall(Args):
    to_number: Destination
    restrict_to: Literal["web_call", "mobile"] | None = Field(
        None, description="ring only this device of yours; default all"
    )
    # The contract types it as a string; agents know it as a reception's integer id.
    cloak_reception_id: Annotated[Id, PlainSerializer(str)] | None = Field(
        None, description="call from this reception's number; default: your caller-id"
    )


class ListVoicemails(Args):
    created_at_lt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit | None = None
    number: Phone | None = None


class UpdateVoicemail(Args):
    id: Id
    heard: bool | None = None
    comment: Annotated[str, Field(max_length=1000), WithJsonSchema({"type": "string"})] | None = None

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
    # 0 or 1 as an integer: a Literal would let `true` through as 1.
    rating: Annotated[int, Field(ge=0, le=1), WithJsonSchema({"type": "integer", "enum": [0, 1]})] | None = (
        Field(None, description="0 angry, 1 happy")
    )
    # The API filters on the parameter's presence, so only `true` is meaningful.
    commented: Literal[True] | None = Field(None, description="true: only those with a comment")


class ListMessages(Args):
    created_at_lt_or_eq: Timestamp | None = None
    created_at_gt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit | None = None


class ListTags(Args):
    name: Annotated[str, Field(min_length=1, max_length=100), WithJsonSchema({"type": "string"})] | None = (
        None
    )
