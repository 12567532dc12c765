"""The state that must hold across restarts and replicas: budgets, single-use confirmations,
approval pages, the token-check cache, and the append-only audit (a record leaves it only by a
prune recorded in it, once older than the retention).

One interface, two backends: SQLite in the state directory (the embedded default, for one host)
and PostgreSQL (`RELATEL_MCP_STORE=postgresql://…`, for replicas on many hosts). Every operation is
one atomic statement written once here, in SQL both databases speak, so two concurrent calls on
any replicas can neither overspend a budget nor use a confirmation twice. When the database
cannot be reached an operation raises `StoreUnavailable`: gated calls then fail closed.

    store/base.py      Store (the interface, its SQL written once), ApprovalPage, AuditFilter,
                       StoreUnavailable
    store/schema.py    the migrations of each backend, applied at start-up under a lock
    store/sqlite.py    SqliteStore
    store/postgres.py  PostgresStore (psycopg 3, async, a connection pool)
    store/login.py     the token `relatel-mcp login` keeps
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ..core.metrics import NO_METRICS, Metrics
from .base import (
    ApprovalPage,
    AuditFilter,
    Fetch,
    Store,
    StoreUnavailable,
    private_directory,
    private_file,
    stamp,
    unusable_state_directory,
)

__all__ = [
    "ApprovalPage",
    "AuditFilter",
    "Fetch",
    "Store",
    "StoreUnavailable",
    "open_store",
    "private_directory",
    "private_file",
    "stamp",
    "unusable_state_directory",
]


@contextlib.asynccontextmanager
async def open_store(
    url: str | None, state_dir: Path, *, metrics: Metrics = NO_METRICS
) -> AsyncIterator[Store]:
    """PostgreSQL for a `postgresql://` URL, else SQLite in `state_dir`; closed on exit. Each
    statement that meets StoreUnavailable is counted in `metrics`."""
    if url:
        from .postgres import PostgresStore

        store: Store = await PostgresStore.connect(url)
    else:
        from .sqlite import SqliteStore

        store = SqliteStore(state_dir)
    store.metrics = metrics
    try:
        yield store
    finally:
        await store.close()
