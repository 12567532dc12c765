"""Approval pages for URL-mode elicitation: a human approves in a browser, outside the client.

A question becomes a single-use page at an unguessable URL (`/approve/<256 random bits>`): the
facts the server resolved, and Approve / Decline, as a plain HTML form. The URL travels only in
the elicitation request to the client's UI, never in a tool result, so the agent cannot open it.
The page answers once; expired, decided and unknown pages look the same (404). Pages live in the
store, so behind a load balancer any replica serves them.

Over HTTP the page is a route of the server itself (its `--public-url`, or the address the
client used). Over stdio, `LoopbackPages` serves it on a free loopback port for as long as a
question is open, and stops when none is. Either way Host and Origin are checked as for /mcp
(over stdio: only the loopback server's own), so neither DNS rebinding nor another site's form
reaches a page.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import pages
from .store import ApprovalPage, Store, StoreUnavailable

if TYPE_CHECKING:
    from .serving import UvicornServer

PAGE_PATH = "/approve/"


class Approvals:
    """Approval pages, kept in the store: any replica can show a page and take its answer, and
    the one that asked sees it (it polls the store; an answer given to itself wakes it at once)."""

    POLL = 0.2  # seconds between looks at the store while waiting for an answer

    def __init__(self, store: Store) -> None:
        self.store = store
        self._mine: dict[str, float] = {}  # pages this process opened: id -> expiry
        self._answered: dict[str, anyio.Event] = {}
        self._changed: anyio.Event | None = None

    async def open(self, question: str, tool: str, ttl: float) -> ApprovalPage:
        page = ApprovalPage(secrets.token_urlsafe(32), question, tool, time.time() + ttl)
        await self.store.open_page(page)
        self._mine[page.id] = page.expires
        self._answered[page.id] = anyio.Event()
        return page

    async def get(self, page_id: str) -> ApprovalPage | None:
        """The page while it lives (decided or not); None once expired, closed or never opened."""
        return await self.store.page(page_id)

    async def wait(self, page: ApprovalPage) -> str | None:
        """The decision, or None if the page expires (or is closed) first."""
        while (left := page.expires - time.time()) > 0:
            current = await self.store.page(page.id)
            if current is None:
                return None
            if current.decision is not None:
                return current.decision
            answered = self._answered.get(page.id) or anyio.Event()
            with anyio.move_on_after(min(self.POLL, left)):
                await answered.wait()
        return None

    async def close(self, page: ApprovalPage) -> None:
        self._mine.pop(page.id, None)
        self._answered.pop(page.id, None)
        self._notify()
        with contextlib.suppress(StoreUnavailable):  # it expires by itself
            await self.store.close_page(page.id)

    def __len__(self) -> int:
        """How many of this process's questions are open."""
        now = time.time()
        for page_id in [key for key, expires in self._mine.items() if expires < now]:
            self._mine.pop(page_id)
            self._answered.pop(page_id, None)
        return len(self._mine)

    def next_expiry(self) -> float | None:
        """Seconds until the first of this process's questions expires."""
        return min(self._mine.values()) - time.time() if self._mine else None

    def changed(self) -> anyio.Event:
        """An event set the next time a question of this process is closed."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def routes(self, security: TransportSecuritySettings) -> list[Route]:
        """The page, behind /mcp's own Host and Origin check (421 / 403): a DNS-rebinding site
        cannot read it, nor another site post a decision to it."""
        guard = TransportSecurityMiddleware(security)

        async def page(request: Request) -> Response:
            return await guard.validate_request(request) or await self._page(request)

        return [Route(PAGE_PATH + "{page_id}", page, methods=["GET", "POST"])]

    async def _page(self, request: Request) -> Response:
        page_id = request.path_params["page_id"]
        try:
            page = await self.store.page(page_id)
            if page is None or (request.method == "GET" and page.decision is not None):
                return pages.page(
                    404,
                    "Nothing to approve",
                    "<p>This approval page has expired or was already answered.</p>",
                )
            if request.method == "GET":
                return pages.page(200, "Approve this action?", _form(page))
            decision = str((await request.form()).get("decision"))
            if decision not in ("approve", "decline") or not await self.store.decide(page_id, decision):
                return pages.page(409, "Already answered", "<p>This question was already answered.</p>")
        except StoreUnavailable:
            return pages.page(
                503, "Try again", "<p>Your answer cannot be recorded right now; try again shortly.</p>"
            )
        if page_id in self._answered:
            self._answered[page_id].set()
        done = "Approved" if decision == "approve" else "Declined"
        return pages.page(200, done, f"<p>{done}. You can close this page and return to your assistant.</p>")


def _form(page: ApprovalPage) -> str:
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in page.question.splitlines())
    minutes = max(1, round((page.expires - time.time()) / 60))
    return (
        f"<p class=tool>relatel-mcp asks you to approve <code>{html.escape(page.tool)}</code>:</p>"
        f"<div class=facts>{lines}</div>"
        "<form method=post>"
        "<button name=decision value=approve>Approve</button> "
        "<button name=decision value=decline>Decline</button>"
        f"</form><p class=note>Nothing happens unless you approve. This page works once, for about "
        f"{minutes} minute{'s' * (minutes != 1)}.</p>"
    )


# ------------------------------------------------------------------------------ where pages live


class PagesAt:
    """Pages served by the HTTP server itself, at `base`."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    async def url(self, page: ApprovalPage) -> str:
        return f"{self.base}{PAGE_PATH}{page.id}"


class LoopbackPages:
    """Over stdio: a loopback server that runs only while a question is open."""

    def __init__(self, approvals: Approvals, tasks: TaskGroup) -> None:
        self.approvals, self.tasks = approvals, tasks
        self._server: UvicornServer | None = None
        self._lock = anyio.Lock()

    async def url(self, page: ApprovalPage) -> str:
        async with self._lock:
            if self._server is None:
                from .serving import UvicornServer  # only once a question is asked over stdio

                # No lifespan: its task would outlive a server cancelled at exit, and say so in a traceback.
                server = UvicornServer(None, "127.0.0.1", 0, lifespan="off")
                own = TransportSecuritySettings(  # its own Host, and its own Origin (or none)
                    allowed_hosts=[f"127.0.0.1:{server.port}"], allowed_origins=[server.url]
                )
                server.app = Starlette(routes=self.approvals.routes(own))
                self._server = server
                self.tasks.start_soon(self._serve_while_needed, self._server)
                await self._server.wait_started()
            return f"{self._server.url}{PAGE_PATH}{page.id}"

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
                with anyio.move_on_after(max(0.05, self.approvals.next_expiry() or 0)):
                    await changed.wait()
            server.stop()


@contextlib.asynccontextmanager
async def loopback_pages(approvals: Approvals) -> AsyncIterator[LoopbackPages]:
    async with anyio.create_task_group() as tasks:
        yield LoopbackPages(approvals, tasks)
        tasks.cancel_scope.cancel()
