"""Log lines on stderr, one JSON object each, for operators to read, grep and ship.

Every tool call is one `tool_call` line (tool, account pseudonym, decision, upstream status,
duration in ms) and every HTTP request one `http` line (method, path, status, duration in ms,
client address). Neither ever holds a token or an argument: the account is a pseudonym, the query
string is left out, and an approval page's path (its unguessable part is its credential) is cut
to its prefix. `--log-level debug` also lets the libraries speak, in the same format (not the
HTTP client's request lines, which carry whole URLs).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .policy.approvals import PAGE_PATH

calls = logging.getLogger("relatel_mcp.calls")
http = logging.getLogger("relatel_mcp.http")
audit = logging.getLogger("relatel_mcp.audit")  # the audit's own upkeep: prunes past the retention


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, and the event's fields (or the message)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(level: str) -> None:
    """Our lines at `level`; other libraries' only from warnings up, unless debugging.

    Where logging is configured already (a program that embeds the server, a test run), it is
    left as it is."""
    root = logging.getLogger()
    if root.handlers:
        return
    # The lines hold none of what these look up for every record (the calling function, thread
    # and process names): not looking them up halves what a line costs a tool call. (The logging
    # HOWTO's "Optimization" section names these switches.)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logging.getLogger("relatel_mcp").setLevel(level.upper())
    # Its lines are whole URLs, and Relatel's token endpoint takes the app's secret and the code in
    # the query string (as its docs say): never at any level.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, name, extra={"fields": {"event": name, **fields}})


def since(started: float) -> float:
    """Milliseconds since a `time.monotonic()` reading."""
    return round((time.monotonic() - started) * 1000, 1)


class AccessLog:
    """ASGI middleware: one `http` line per request, once its response is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.monotonic(), None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"]
            event(
                http,
                "http",
                method=scope["method"],
                path=PAGE_PATH + "…" if path.startswith(PAGE_PATH) else path,
                status=status,
                duration_ms=since(started),
                client=(scope.get("client") or ("unknown",))[0],
            )
