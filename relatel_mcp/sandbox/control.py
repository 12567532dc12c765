"""The out-of-band side of the sandbox: the /_sandbox/ control endpoints (loopback only, no auth)
for the outbox, the request log, reset and faults, and the middleware that keeps the request log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from relatel_mcp.sandbox import faults as fault_mod
from relatel_mcp.sandbox import oauth
from relatel_mcp.sandbox.auth import DEMO_TOKENS, request_token, token_fingerprint
from relatel_mcp.sandbox.checks import decode_json, error_response
from relatel_mcp.sandbox.context import as_response
from relatel_mcp.sandbox.data import Record
from relatel_mcp.sandbox.state import SandboxState


def control(handler: Callable[[Request, SandboxState], Any]) -> Callable:
    """Out-of-band endpoints: no auth, but only from loopback."""

    async def run(request: Request) -> Response:
        host = request.client.host if request.client else ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("testclient", "localhost")
        if not loopback:
            return error_response(403, "control endpoints are loopback only")
        result = handler(request, request.app.state.sandbox)
        if hasattr(result, "__await__"):
            result = await result
        return as_response(result)

    return run


def describe(request: Request, state: SandboxState) -> Any:
    return {
        "name": "relatel-mcp sandbox",
        "sandbox": True,
        "api": "Relatel API 2.1.2 (simulated)",
        "base_url": str(request.base_url).rstrip("/"),
        "demo_tokens": DEMO_TOKENS,
        "tenant_tokens": "sandbox-tenant-<1-64 of A-Za-z0-9_-> acts as sandbox-admin",
        "control": [
            "GET /_sandbox/outbox",
            "GET|DELETE /_sandbox/requests",
            "POST /_sandbox/reset",
            "GET|POST|DELETE /_sandbox/faults",
            "POST /_sandbox/faults/release",
            "DELETE /_sandbox/oauth/tokens[?employee_id=N]",
        ],
        "oauth_app": {"client_id": oauth.CLIENT_ID, "client_secret": oauth.CLIENT_SECRET},
    }


def clear_requests(request: Request, state: SandboxState) -> Any:
    state.requests.clear()
    return {"requests": []}


def reset(request: Request, state: SandboxState) -> Any:
    state.reset()
    return {"reset": True}


async def add_fault(request: Request, state: SandboxState) -> Any:
    try:
        fault = fault_mod.parse_fault(decode_json(await request.body()))
    except ValueError as error:
        errors = getattr(error, "errors", {"fault": ["must be a JSON object"]})
        return error_response(422, "Invalid fault", errors)
    state.faults.append(fault)
    if fault.hold:
        state.held.append(fault)
    return {"fault": fault.as_dict(), "faults": [f.as_dict() for f in state.faults]}


def release_held(request: Request, state: SandboxState) -> Any:
    """Let every response held by a `hold` fault go (see faults.py)."""
    held = [f for f in state.held if not f.released]
    for fault in held:
        fault.released = True
    state.held.clear()
    return {"released": len(held)}


def clear_faults(request: Request, state: SandboxState) -> Any:
    state.faults.clear()
    return {"faults": []}


CONTROL_ROUTES = [
    ("/", "GET", describe),
    ("/_sandbox/outbox", "GET", lambda request, state: {"outbox": state.outbox}),
    ("/_sandbox/requests", "GET", lambda request, state: {"requests": state.requests}),
    ("/_sandbox/requests", "DELETE", clear_requests),
    ("/_sandbox/reset", "POST", reset),
    ("/_sandbox/faults", "GET", lambda request, state: {"faults": [f.as_dict() for f in state.faults]}),
    ("/_sandbox/faults", "POST", add_fault),
    ("/_sandbox/faults", "DELETE", clear_faults),
    ("/_sandbox/faults/release", "POST", release_held),
    ("/_sandbox/oauth/tokens", "DELETE", oauth.destroy_tokens),
]
_SECRET_PARAMETERS = frozenset({"access_token", "client_secret", "code"})


class RequestLog:
    """ASGI middleware recording every /api/ request in arrival order; tokens only as fingerprints."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        raw = await read_all(receive)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record: Record = {
            "method": scope["method"],
            "path": scope["path"],
            "query": {k: v if k not in _SECRET_PARAMETERS else ["[redacted]"] for k, v in query.items()},
            "body": parse_json(raw),
            "token_fp": token_fingerprint(request_token(headers, query)),
            "status": None,
            "fault": None,
        }
        self.state.requests.append(record)
        scope[fault_mod.RECORD_KEY] = record

        async def logged_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay(raw, receive), logged_send)
        except Exception:
            record["status"] = record["status"] or 500
            raise


async def read_all(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False) and message["type"] == "http.request"
    return b"".join(chunks)


def replay(raw: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return again


def parse_json(raw: bytes) -> Any:
    """The body as logged: its JSON, or None when it is empty or not JSON."""
    try:
        return decode_json(raw)
    except ValueError:
        return None
