"""The embedded store: one SQLite file, `state.db`, in the state directory.

Good for one host (replicas on one host may share the directory: SQLite locks the file). The
directory is made 0700 and every file in it 0600 (SQLite gives its -wal and -shm files the
database file's mode), even where the directory already existed with looser permissions.
Statements run in a worker thread, one at a time, so a busy file never blocks the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from . import Fetch, Store, StoreUnavailable, private_directory, private_file
from .schema import SQLITE


class SqliteStore(Store):
    def __init__(self, directory: Path) -> None:
        self.path = private_file(private_directory(directory) / "state.db")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()

    def _migrate(self) -> None:
        """Apply what this file lacks, under SQLite's write lock (BEGIN IMMEDIATE)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
            for version, script in enumerate(SQLITE[row[0] or 0 :], start=(row[0] or 0) + 1):
                for statement in filter(str.strip, script.split(";\n")):
                    self._db.execute(statement)
                self._db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    async def _run(self, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        return await anyio.to_thread.run_sync(self._run_now, sql, params, fetch)

    def _run_now(self, sql: str, params: Sequence[Any], fetch: Fetch) -> Any:
        with self._lock:
            try:
                cursor = self._db.execute(sql, tuple(params))
                return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else None
            except sqlite3.OperationalError as exc:  # locked beyond the timeout, disk full, I/O
                raise StoreUnavailable(f"the state database failed: {exc}") from None

    async def close(self) -> None:
        with self._lock:
            self._db.close()
