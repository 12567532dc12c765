"""Handlers for the statistics operations: a reception's answer statistics and live call status,
call statistics per date or endpoint, and smiley (NPS) statistics. See app.py for how the sandbox
reads the contract where it is silent.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from relatel_mcp.sandbox.checks import (
    Problem,
    Spec,
    day,
    integer,
    invalid,
    non_negative,
    one_of,
    parse_time,
    text,
)
from relatel_mcp.sandbox.context import Ctx, ts
from relatel_mcp.sandbox.data import CPH, Record

MISSED = ("missed", "voicemail", "orphaned")  # a call's statuses that count as missed
FINISHED = ("answered", *MISSED)
PHASES = ("open", "closed", "backup")
TIME_RANGE: Spec = {"from_time": (parse_time, True), "to_time": (parse_time, True)}


def phases(raw: Any) -> set[str]:
    chosen = {p.strip() for p in text(raw).split(",") if p.strip()}
    if not chosen or not chosen <= set(PHASES):
        raise Problem("must be a comma separated list of open, closed, backup")
    return chosen


def seconds(start: str, end: str | None) -> float:
    return (ts(end) - ts(start)).total_seconds() if end else 0.0


def average(values: list[float]) -> int:
    return round(sum(values) / len(values)) if values else 0


def in_range(q: dict[str, Any], value: str) -> bool:
    """Whether a stored time lies in the query's [from_time, to_time] (see TIME_RANGE)."""
    return q["from_time"] <= ts(value) <= q["to_time"]


def local_day(call: Record) -> date:
    """The Copenhagen day a call started on."""
    return ts(call["started_at"]).astimezone(CPH).date()


def get_reception_statistics(ctx: Ctx) -> Any:
    reception = ctx.find("receptions", ctx.params["id"], "Reception")
    q = ctx.query_fields(
        {
            "answer_target": (non_negative, True),
            **TIME_RANGE,
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
        and in_range(q, c["started_at"])
    ]
    answered = [c for c in calls if c["status"] == "answered"]
    missed = [c for c in calls if c["status"] in MISSED]
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
        "missed": sum(c["status"] in MISSED for c in calls),
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
    tagged = [(c, eps) for c, eps in tagged if eps and q["start"] <= local_day(c) <= q["end"]]
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
                **stats_row([c for c, _ in tagged if local_day(c) == d]),
            }
            for d in days
        ]
    return {"rows": rows}


def get_smiley_statistics(ctx: Ctx) -> Any:
    q = ctx.query_fields(
        {
            **TIME_RANGE,
            "endpoint": (text, False),
            "reception_id": (integer, False),
            "employee_id": (integer, False),
        }
    )
    picked = [
        s
        for s in ctx.company.smileys.values()
        if in_range(q, s["rated_at"])
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
