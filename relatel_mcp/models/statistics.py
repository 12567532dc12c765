"""Arguments of the statistics tools (receptions, smileys, the aggregated statistics API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, model_validator

from .common import Args, Day, Endpoint, Id, Timestamp

Phase = Literal["open", "closed", "backup"]
# Both are documented as comma-separated strings; a list is what an agent naturally produces.
PhaseList = Annotated[list[Phase], Field(min_length=1, max_length=3), PlainSerializer(",".join)]
EndpointList = Annotated[list[Endpoint], Field(min_length=1, max_length=50), PlainSerializer(",".join)]
Key = Annotated[str, Field(min_length=1, max_length=50)]


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
    answer_target: Annotated[int, Field(ge=0, le=3600)]
    from_time: Timestamp
    to_time: Timestamp
    phase: PhaseList | None = None


class SmileyStatistics(_Interval):
    from_time: Timestamp
    to_time: Timestamp
    endpoint: Endpoint | None = None
    employee_id: Id | None = None


class Statistics(_Interval):
    endpoint_type: Key
    group_by: Key
    start: Day
    end: Day
    endpoint: EndpointList | None = None

    def _bounds(self) -> tuple:
        return self.start, self.end
