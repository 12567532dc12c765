"""Approval pages' questions and answers, kept in the store: any replica can show a page and take
its answer, and the one that asked sees it. The pages themselves are served by
`relatel_mcp.web.approval_pages`."""

from __future__ import annotations

import contextlib
import secrets
import time

import anyio

from ..store import ApprovalPage, Store, StoreUnavailable

PAGE_PATH = "/approve/"  # + 256 random bits: where a page is served (relatel_mcp/web/approval_pages.py)


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

    async def decide(self, page_id: str, decision: str) -> bool:
        """Record a human's answer; False if the page was already answered (or is gone)."""
        if not await self.store.decide(page_id, decision):
            return False
        if page_id in self._answered:
            self._answered[page_id].set()
        return True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
