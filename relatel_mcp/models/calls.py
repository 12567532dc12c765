"""Arguments of the call, voicemail, chat, smiley, message and tag tools: the company's traffic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

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
    restrict_to: Literal["web_call", "mobile"] | None = None
    # The contract types it as a string; agents know it as a reception's integer id.
    cloak_reception_id: Annotated[Id, PlainSerializer(str)] | None = None


class ListVoicemails(Args):
    created_at_lt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit | None = None
    number: Phone | None = None


class UpdateVoicemail(Args):
    id: Id
    heard: bool | None = None
    comment: Annotated[str, Field(max_length=1000)] | None = None

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
    rating: Annotated[int, Field(ge=0, le=1)] | None = None
    # The API filters on the parameter's presence, so only `true` is meaningful.
    commented: Literal[True] | None = None


class ListMessages(Args):
    created_at_lt_or_eq: Timestamp | None = None
    created_at_gt_or_eq: Timestamp | None = None
    endpoint: Endpoint | None = None
    limit: Limit | None = None


class ListTags(Args):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
