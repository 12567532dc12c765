"""The embedded store: one SQLite file, `state.db`, in the state directory.

Good for one host (replicas on one host may share the directory: SQLite locks the file). The
directory is made 0700 and every file in it 0600 (SQLite gives its -wal and -shm files the
database file's mode), even where the directory already existed with looser permissions.
Statements run in a worker thread, one at a time, so a busy file never blocks the event loop.
The file is created (private) at start-up but opened and migrated on the first statement: a
session that only reads never needs it, and never loads sqlite3.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .base import Fetch, Store, StoreUnavailable, private_directory, private_file
from .schema import SQLITE

OPEN_SECONDS = 10.0

if TYPE_CHECKING:
    import sqlite3


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.path = private_file(private_directory(directory) / "state.db")
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        """The open database (under `_lock`), opened and migrated the first time. Replicas that
        open a new file at once can find it locked (switching it to WAL takes it whole, without
        SQLite's busy wait): they try again for up to OPEN_SECONDS."""
        if self._db is None:
            import sqlite3

            deadline = time.monotonic() + OPEN_SECONDS
            while self._db is None:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    _migrate(db)
                    self._db = db
                except sqlite3.DatabaseError as exc:  # not a database, locked, I/O
                    db.close()
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise StoreUnavailable(
                            f"the state database {self.path} cannot be opened: {exc}"
                        ) from None
                    time.sleep(0.05)
        return self._db

    async def _run(self, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        try:
            return await anyio.to_thread.run_sync(self._run_now, sql, params, fetch)
        except StoreUnavailable:
            self.metrics.store_error(self.backend)
            raise

    async def ping(self, timeout: float) -> None:
        try:
            with anyio.fail_after(timeout):  # a thread held up by a locked file is left to finish
                await anyio.to_thread.run_sync(self._run_now, "SELECT 1", (), "one", abandon_on_cancel=True)
        except TimeoutError:
            raise StoreUnavailable(f"the state database did not answer within {timeout:g} s") from None

    def _run_now(self, sql: str, params: Sequence[Any], fetch: Fetch) -> Any:
        import sqlite3

        with self._lock:
            try:
                cursor = self._connection().execute(sql, tuple(params))
                return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else None
            except sqlite3.OperationalError as exc:  # locked beyond the timeout, disk full, I/O
                raise StoreUnavailable(f"the state database failed: {exc}") from None

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()


def _migrate(db: sqlite3.Connection) -> None:
    """Apply what this file lacks, under SQLite's write lock (BEGIN IMMEDIATE)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        for version, script in enumerate(SQLITE[row[0] or 0 :], start=(row[0] or 0) + 1):
            for statement in filter(str.strip, script.split(";\n")):
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
