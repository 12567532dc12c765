"""The shared store: PostgreSQL, for replicas on any number of hosts (`RELATEL_MCP_STORE`).

psycopg 3, async, with a connection pool that checks a connection before lending it, so a
restarted database is used again without restarting the server. While the database is down,
borrowing fails within `timeout` seconds and every operation raises StoreUnavailable (gated calls
are then refused; reads, which need no store, go on). Migrations run under an advisory lock, so
replicas started together apply each one once; a server started while the database is down
applies them when it first reaches it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import anyio

from .base import Fetch, Store, StoreUnavailable
from .schema import POSTGRES

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - the extra is part of every test environment
    raise ValueError("a postgresql:// store needs psycopg: pip install 'relatel-mcp[postgres]'") from exc

_LOCK = 72_406_117  # pg_advisory_xact_lock key of relatel-mcp's migrations
_DOWN = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class PostgresStore(Store):
    mark = "%s"
    backend = "postgresql"

    def __init__(self, url: str, *, timeout: float = 2.0, max_size: int = 10) -> None:
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True},
            reconnect_timeout=0,  # keep trying to reconnect for as long as the server runs
        )
        self._migrated = False
        self._migrating = anyio.Lock()

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        store = cls(url)
        await store._pool.open(wait=False)
        with contextlib.suppress(StoreUnavailable):  # the database is down: migrate on first use
            await store._migrate()
        return store

    async def _migrate(self) -> None:
        async with self._migrating:
            if self._migrated:
                return
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                    row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
                    done = (row[0] or 0) if row else 0
                    for version, script in enumerate(POSTGRES[done:], start=done + 1):
                        await conn.execute(script)
                        await conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            except _DOWN as exc:
                raise StoreUnavailable(_reason(exc)) from None
            self._migrated = True

    async def _run(self, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        try:
            if not self._migrated:
                await self._migrate()
            async with self._pool.connection() as conn:
                cursor = await conn.execute(sql, tuple(params))
                if fetch == "one":
                    return await cursor.fetchone()
                return await cursor.fetchall() if fetch == "all" else None
        except _DOWN as exc:
            self.metrics.store_error(self.backend)
            raise StoreUnavailable(_reason(exc)) from None
        except StoreUnavailable:  # the migration's
            self.metrics.store_error(self.backend)
            raise

    async def ping(self, timeout: float) -> None:
        try:
            with anyio.fail_after(timeout * 1.5):  # the pool's own timeout first: a backstop
                async with self._pool.connection(timeout=timeout) as conn:
                    await conn.execute("SELECT 1")
        except _DOWN as exc:
            raise StoreUnavailable(_reason(exc)) from None
        except TimeoutError:
            raise StoreUnavailable(f"the PostgreSQL store did not answer within {timeout:g} s") from None

    async def close(self) -> None:
        await self._pool.close()


def _reason(exc: Exception) -> str:
    """Why, without the connection string (it may hold a password)."""
    if isinstance(exc, PoolTimeout):
        return "no connection to the PostgreSQL store in time"
    return f"the PostgreSQL store failed ({type(exc).__name__})"
