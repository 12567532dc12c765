"""Arguments of the statistics tools (receptions, smileys, the aggregated statistics API).

An interval that ends before it starts is Relatel's to refuse: the contract says nothing of it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema

from .common import ENDPOINT, Args, Day, Endpoint, Id, Timestamp

Phase = Literal["open", "closed", "backup"]
# Both are documented as comma-separated strings; a list is what an agent naturally produces.
# A phase list is the contract's values, at least one (an empty list would send none of them).
PhaseList = Annotated[
    list[Phase],
    Field(min_length=1),
    PlainSerializer(",".join),
    WithJsonSchema({"type": "array", "items": {"enum": ["open", "closed", "backup"], "type": "string"}}),
]
EndpointList = Annotated[
    list[Endpoint],
    PlainSerializer(",".join),
    WithJsonSchema({"type": "array", "items": {"type": "string"}}),
]


class ReceptionStatistics(Args):
    id: Id
    answer_target: int = Field(description="seconds; answered sooner is within target")
    from_time: Timestamp
    to_time: Timestamp
    phase: PhaseList | None = Field(None, description="default all; backup: overflow")


class SmileyStatistics(Args):
    from_time: Timestamp
    to_time: Timestamp
    endpoint: Endpoint | None = None
    employee_id: Id | None = None


class Statistics(Args):
    # The contract leaves both open (`any`, no values listed): the known values are examples (the
    # ones the sandbox interprets, see sandbox/app.py), and any other goes to Relatel to judge.
    endpoint_type: str = Field(description="e.g. reception or employee")
    group_by: str = Field(description="e.g. date or endpoint")
    start: Day
    end: Day = Field(description="inclusive")
    endpoint: EndpointList | None = Field(None, description=f"{ENDPOINT}, all of endpoint_type")
