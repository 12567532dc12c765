"""Arguments of the statistics tools (receptions, smileys, the aggregated statistics API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema, model_validator

from .common import ENDPOINT, Args, Day, Endpoint, Id, Timestamp

Phase = Literal["open", "closed", "backup"]
# Both are documented as comma-separated strings; a list is what an agent naturally produces.
PhaseList = Annotated[
    list[Phase],
    Field(min_length=1, max_length=3),
    PlainSerializer(",".join),
    WithJsonSchema({"type": "array", "items": {"enum": ["open", "closed", "backup"], "type": "string"}}),
]
EndpointList = Annotated[
    list[Endpoint],
    Field(min_length=1, max_length=50),
    PlainSerializer(",".join),
    WithJsonSchema({"type": "array", "items": {"type": "string"}}),
]


class _Interval(Args):
    @model_validator(mode="after")
    def _ordered(self) -> _Interval:
        start, end = self._bounds()
        if start > end:
            raise ValueError("the interval ends before it starts")
        return self

    def _bounds(self) -> tuple:
        return self.from_time, self.to_time  # type: ignore[attr-defined]


class ReceptionStatistics(_Interval):
    id: Id
    answer_target: Annotated[int, Field(ge=0, le=3600), WithJsonSchema({"type": "integer"})] = Field(
        description="seconds; answered sooner is within target"
    )
    from_time: Timestamp
    to_time: Timestamp
    phase: PhaseList | None = Field(None, description="default all; backup: overflow")


class SmileyStatistics(_Interval):
    from_time: Timestamp
    to_time: Timestamp
    endpoint: Endpoint | None = None
    employee_id: Id | None = None


class Statistics(_Interval):
    # The values the sandbox interprets (see sandbox/app.py); the contract leaves them open.
    endpoint_type: Literal["reception", "employee"]
    group_by: Literal["date", "endpoint"]
    start: Day
    end: Day = Field(description="inclusive")
    endpoint: EndpointList | None = Field(None, description=f"{ENDPOINT}, all of endpoint_type")

    def _bounds(self) -> tuple:
        return self.start, self.end
