"""Approval pages for URL-mode elicitation: a human approves in a browser, outside the client.

A question becomes a single-use page at an unguessable URL (`/approve/<256 random bits>`): the
facts the server resolved, and Approve / Decline, as a plain HTML form. The URL travels only in
the elicitation request to the client's UI, never in a tool result, so the agent cannot open it.
The page answers once; expired, decided and unknown pages look the same (404).

Over HTTP the page is a route of the server itself (its `--public-url`, or the address the
client used). Over stdio, `LoopbackPages` serves it on a free loopback port for as long as a
question is open, and stops when none is.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .serving import UvicornServer

PAGE_PATH = "/approve/"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


@dataclass
class Pending:
    id: str
    question: str
    tool: str
    expires: float
    decision: str | None = None  # "approve" | "decline"
    decided: anyio.Event = field(default_factory=anyio.Event)


class Approvals:
    """The open questions of this process, by page id."""

    def __init__(self) -> None:
        self._open: dict[str, Pending] = {}
        self._changed: anyio.Event | None = None

    def open(self, question: str, tool: str, ttl: float) -> Pending:
        self._purge()
        pending = Pending(secrets.token_urlsafe(32), question, tool, time.monotonic() + ttl)
        self._open[pending.id] = pending
        return pending

    def get(self, page_id: str) -> Pending | None:
        self._purge()
        return self._open.get(page_id)

    def decide(self, page_id: str, decision: str) -> Pending | None:
        """Record the human's answer, once; None when there is nothing (left) to answer."""
        pending = self.get(page_id)
        if pending is None or pending.decision is not None or decision not in ("approve", "decline"):
            return None
        pending.decision = decision
        pending.decided.set()
        return pending

    async def wait(self, pending: Pending) -> str | None:
        """The decision, or None if the page expires first."""
        with anyio.move_on_after(max(0.0, pending.expires - time.monotonic())):
            await pending.decided.wait()
        return pending.decision

    def close(self, pending: Pending) -> None:
        self._open.pop(pending.id, None)
        self._notify()

    def __len__(self) -> int:
        self._purge()
        return len(self._open)

    def next_expiry(self) -> float | None:
        return min((p.expires for p in self._open.values()), default=None)

    def _purge(self) -> None:
        now = time.monotonic()
        expired = [key for key, pending in self._open.items() if pending.expires < now]
        for key in expired:
            del self._open[key]
        if expired:
            self._notify()

    def changed(self) -> anyio.Event:
        """An event set the next time a question is closed or expires."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def routes(self) -> list[Route]:
        return [Route(PAGE_PATH + "{page_id}", self._page, methods=["GET", "POST"])]

    async def _page(self, request: Request) -> Response:
        page_id = request.path_params["page_id"]
        pending = self.get(page_id)
        if pending is None or (request.method == "GET" and pending.decision is not None):
            return _html(
                404, "Nothing to approve", "<p>This approval page has expired or was already answered.</p>"
            )
        if request.method == "GET":
            return _html(200, "Approve this action?", _form(pending))
        decision = (await request.form()).get("decision")
        if self.decide(page_id, str(decision)) is None:
            return _html(409, "Already answered", "<p>This question was already answered.</p>")
        done = "Approved" if decision == "approve" else "Declined"
        return _html(200, done, f"<p>{done}. You can close this page and return to your assistant.</p>")


def _form(pending: Pending) -> str:
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in pending.question.splitlines())
    minutes = max(1, round((pending.expires - time.monotonic()) / 60))
    return (
        f"<p class=tool>relatel-mcp asks you to approve <code>{html.escape(pending.tool)}</code>:</p>"
        f"<div class=facts>{lines}</div>"
        "<form method=post>"
        "<button name=decision value=approve>Approve</button> "
        "<button name=decision value=decline>Decline</button>"
        f"</form><p class=note>Nothing happens unless you approve. This page works once, for about "
        f"{minutes} minute{'s' * (minutes != 1)}.</p>"
    )


def _html(status: int, title: str, body: str) -> HTMLResponse:
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<meta name=viewport content='width=device-width'><style>body{font:16px system-ui;"
        "max-width:40em;margin:2em auto;padding:0 1em}.facts{border-left:4px solid #c60;"
        "padding-left:1em}button{font-size:1.1em;margin-right:1em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=_HEADERS)


# ------------------------------------------------------------------------------ where pages live


class PagesAt:
    """Pages served by the HTTP server itself, at `base`."""

    def __init__(self, approvals: Approvals, base: str) -> None:
        self.approvals, self.base = approvals, base.rstrip("/")

    async def url(self, pending: Pending) -> str:
        return f"{self.base}{PAGE_PATH}{pending.id}"


class LoopbackPages:
    """Over stdio: a loopback server that runs only while a question is open."""

    def __init__(self, approvals: Approvals, tasks: TaskGroup) -> None:
        self.approvals, self.tasks = approvals, tasks
        self._server: UvicornServer | None = None
        self._lock = anyio.Lock()

    async def url(self, pending: Pending) -> str:
        async with self._lock:
            if self._server is None:
                self._server = UvicornServer(Starlette(routes=self.approvals.routes()), "127.0.0.1", 0)
                self.tasks.start_soon(self._serve_while_needed, self._server)
                await self._server.wait_started()
            return f"{self._server.url}{PAGE_PATH}{pending.id}"

    async def _serve_while_needed(self, server: UvicornServer) -> None:
        async with anyio.create_task_group() as serving:
            serving.start_soon(server.serve)
            await server.wait_started()
            while True:
                async with self._lock:  # `url` opens a question before it asks for the server
                    if not len(self.approvals):
                        self._server = None
                        break
                changed = self.approvals.changed()
                expiry = self.approvals.next_expiry() or time.monotonic()
                with anyio.move_on_after(max(0.05, expiry - time.monotonic())):
                    await changed.wait()
            server.stop()


@contextlib.asynccontextmanager
async def loopback_pages(approvals: Approvals) -> AsyncIterator[LoopbackPages]:
    async with anyio.create_task_group() as tasks:
        yield LoopbackPages(approvals, tasks)
        tasks.cancel_scope.cancel()
