"""Fault injection: ASGI middleware that makes the next matching /api/ requests fail on purpose.

Faults live in the sandbox state (so `POST /_sandbox/reset` clears them) and are consumed in order.
Handlers know nothing about them. The kinds mirror what a real client meets:

- ``status``: an error status (503, 429, ...) answered at once; the operation is NOT performed.
- ``latency``: the operation IS performed, then the response is held back (a client timeout after
  the request was sent: the caller cannot tell whether it happened).
- ``drop``: the connection breaks mid-response. ``before`` performs nothing; ``after`` performs the
  operation first. The client sees a transport error (e.g. RemoteProtocolError), not a 500.
- ``malformed``: the operation is performed and a 200 with truncated JSON comes back.
- ``hold``: the operation IS performed, then the response waits until `POST /_sandbox/faults/release`
  (at most a minute): a test can change the account at an exact point of a call, while the
  server waits for this answer (the request log shows the request held, with no status yet).

The request log records the fault's effect under "fault"; its "status" is the status line the client
was sent (for a drop: that of the partial response).
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relatel_mcp.sandbox.data import error_body

RECORD_KEY = "relatel.sandbox.record"  # scope key under which the request log shares its record
MAX_LATENCY = 60.0


class InjectedDrop(Exception):
    """Raised after a partial response so the server closes the connection (a deliberate drop)."""


class FaultSpecError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid fault")
        self.errors = errors


@dataclass
class Fault:
    method: str = "*"
    path: str = "*"
    count: int = 1
    status: int | None = None
    retry_after: int | None = None
    latency: float | None = None
    drop: str | None = None
    malformed: bool = False
    hold: bool = False
    released: bool = field(default=False, compare=False)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "released"}

    def effect(self) -> dict[str, Any]:
        """The fault's effect without its matching rule (as shown in the request log)."""
        keys = ("status", "retry_after", "latency", "drop", "malformed", "hold")
        return {k: v for k, v in asdict(self).items() if k in keys and v not in (None, False)}


def _number(spec: dict, key: str, low: float, high: float, *, integer: bool) -> Any:
    value = spec[key]
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        raise FaultSpecError({key: [f"must be a {'whole ' if integer else ''}number from {low} to {high}"]})
    return value


def parse_fault(spec: Any) -> Fault:
    """Validate a `POST /_sandbox/faults` body; exactly one of status/latency/drop/malformed."""
    if not isinstance(spec, dict):
        raise FaultSpecError({"fault": ["must be a JSON object"]})
    kinds = [
        k for k in ("status", "latency", "drop", "malformed", "hold") if spec.get(k) not in (None, False)
    ]
    if len(kinds) != 1:
        raise FaultSpecError({"fault": ["needs exactly one of status, latency, drop, malformed, hold"]})
    fault = Fault(method=str(spec.get("method", "*")).upper(), path=str(spec.get("path", "*")))
    fault.count = _number(spec, "count", 1, 10_000, integer=True) if "count" in spec else 1
    if "status" in kinds:
        fault.status = _number(spec, "status", 400, 599, integer=True)
        if spec.get("retry_after") is not None:
            fault.retry_after = _number(spec, "retry_after", 0, 3600, integer=True)
    if "latency" in kinds:
        fault.latency = float(_number(spec, "latency", 0, MAX_LATENCY, integer=False))
    if "drop" in kinds:
        if spec["drop"] not in ("before", "after"):
            raise FaultSpecError({"drop": ["must be 'before' or 'after'"]})
        fault.drop = spec["drop"]
    if "malformed" in kinds:
        if spec["malformed"] is not True:
            raise FaultSpecError({"malformed": ["must be true"]})
        fault.malformed = True
    if "hold" in kinds:
        if spec["hold"] is not True:
            raise FaultSpecError({"hold": ["must be true"]})
        fault.hold = True
    return fault


def take_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """Consume one use of the first fault matching this request."""
    for fault in faults:
        if fault.matches(method, path):
            fault.count -= 1
            if fault.count <= 0:
                faults.remove(fault)
            return fault
    return None


async def _run_buffered(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """Run the app to completion (the operation is performed) and keep its response."""
    messages: list[Message] = []

    async def capture(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, capture)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start, body


def _start(status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Message:
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http.response.start", "status": status, "headers": base + (headers or [])}


async def _send_status(fault: Fault, send: Send) -> None:
    status = fault.status or 500
    body = json.dumps(error_body(status, f"injected fault: {status}")).encode()
    extra = [(b"retry-after", str(fault.retry_after).encode())] if fault.retry_after is not None else []
    await send(_start(status, body, extra))
    await send({"type": "http.response.body", "body": body})


async def _drop(start: Message, body: bytes, send: Send) -> None:
    await send(start)
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise InjectedDrop("connection dropped by an injected fault")


async def apply_fault(fault: Fault, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    if fault.status is not None:
        return await _send_status(fault, send)
    if fault.drop == "before":
        partial = b'{"success":true,"data":[' + b" " * 40 + b"]}"
        return await _drop(_start(200, partial), partial, send)
    start, body = await _run_buffered(app, scope, receive)
    if fault.drop == "after":
        return await _drop(start, body, send)
    if fault.malformed:
        body = body[: len(body) // 2] or b"{"
        start = _start(200, body)
    if fault.latency:
        await anyio.sleep(fault.latency)
    with anyio.move_on_after(MAX_LATENCY):
        while fault.hold and not fault.released:
            await anyio.sleep(0.005)
    await send(start)
    await send({"type": "http.response.body", "body": body})


class FaultInjector:
    """ASGI middleware applying the pending faults (the state's list, kept across resets) to
    matching /api/ requests."""

    def __init__(self, app: ASGIApp, faults: list[Fault]) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = None
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            fault = take_fault(self.faults, scope["method"], scope["path"])
        if fault is None:
            return await self.app(scope, receive, send)
        record = scope.get(RECORD_KEY)
        if record is not None:
            record["fault"] = fault.effect()
        await apply_fault(fault, self.app, scope, receive, send)


class _HideInjectedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedDrop)


def quiet_injected_drops(logger_name: str = "uvicorn.error") -> None:
    """Keep deliberate drops out of the server log (idempotent); real exceptions still show."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, _HideInjectedDrops) for f in logger.filters):
        logger.addFilter(_HideInjectedDrops())
