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

from ..policy.approvals import PAGE_PATH, Approvals
from ..store import ApprovalPage, StoreUnavailable
from . import pages

if TYPE_CHECKING:
    from .serving import UvicornServer


def approval_routes(approvals: Approvals, security: TransportSecuritySettings) -> list[Route]:
    """The page, behind /mcp's own Host and Origin check (421 / 403): a DNS-rebinding site
    cannot read it, nor another site post a decision to it."""
    guard = TransportSecurityMiddleware(security)

    async def route(request: Request) -> Response:
        return await guard.validate_request(request) or await _page(approvals, request)

    return [Route(PAGE_PATH + "{page_id}", route, methods=["GET", "POST"])]


async def _page(approvals: Approvals, request: Request) -> Response:
    page_id = request.path_params["page_id"]
    try:
        page = await approvals.get(page_id)
        if page is None or (request.method == "GET" and page.decision is not None):
            return pages.page(
                404,
                "Nothing to approve",
                "<p>This approval page has expired or was already answered.</p>",
            )
        if request.method == "GET":
            return pages.page(200, "Approve this action?", _form(page))
        decision = str((await request.form()).get("decision"))
        if decision not in ("approve", "decline") or not await approvals.decide(page_id, decision):
            return pages.page(409, "Already answered", "<p>This question was already answered.</p>")
    except StoreUnavailable:
        return pages.page(
            503, "Try again", "<p>Your answer cannot be recorded right now; try again shortly.</p>"
        )
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
                server.app = Starlette(routes=approval_routes(self.approvals, own))
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
