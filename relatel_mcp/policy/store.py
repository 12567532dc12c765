"""State that must survive a restart: daily budgets, used confirmation tokens, the audit log.

One SQLite file under the state directory. Budget spending and token use are single atomic
statements, so two concurrent calls (or two replicas sharing the directory) can neither overspend
a budget nor use one token twice. The audit table refuses UPDATE and DELETE. Budgets and the audit
are kept per account (the `tenant` column holds the account pseudonym, see accounts.py).

The directory is made 0700 and every file in it 0600 (SQLite gives its -wal and -shm files the
database file's mode), even where the directory already existed with looser permissions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (
    tenant TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (tenant, day, kind));
CREATE TABLE IF NOT EXISTS used_token (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, tenant TEXT NOT NULL, tool TEXT NOT NULL,
    kind TEXT NOT NULL, arguments TEXT NOT NULL, channel TEXT, decision TEXT NOT NULL,
    status INTEGER, upstream_id TEXT, detail TEXT);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
AUDIT_FIELDS = (
    "id",
    "at",
    "tenant",
    "tool",
    "kind",
    "arguments",
    "channel",
    "decision",
    "status",
    "upstream_id",
    "detail",
)


def private_directory(directory: Path) -> Path:
    """`directory`, created if need be, readable by this user only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    return directory


def private_file(path: Path) -> Path:
    """`path`, created empty if need be, readable by this user only."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


class Store:
    def __init__(self, directory: Path) -> None:
        self.path = private_file(private_directory(directory) / "state.db")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ budgets

    def used(self, tenant: str, day: str, kind: str) -> int:
        row = self._one("SELECT used FROM budget WHERE tenant=? AND day=? AND kind=?", (tenant, day, kind))
        return row[0] if row else 0

    def spend(self, tenant: str, day: str, kind: str, amount: int, limit: int) -> bool:
        """Add `amount` unless that would pass `limit`; True when spent."""
        with self._lock:
            self._db.execute(
                "INSERT INTO budget VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING", (tenant, day, kind)
            )
            cursor = self._db.execute(
                "UPDATE budget SET used = used + ? WHERE tenant=? AND day=? AND kind=? AND used + ? <= ?",
                (amount, tenant, day, kind, amount, limit),
            )
            return cursor.rowcount == 1

    def refund(self, tenant: str, day: str, kind: str, amount: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE budget SET used = MAX(used - ?, 0) WHERE tenant=? AND day=? AND kind=?",
                (amount, tenant, day, kind),
            )

    # ------------------------------------------------------------------ single-use tokens

    def use_token(self, nonce: str, expires: float) -> bool:
        """Mark a confirmation token used; False if it already was (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM used_token WHERE expires < ?", (time.time() - 3600,))
            try:
                self._db.execute("INSERT INTO used_token VALUES (?, ?)", (nonce, expires))
            except sqlite3.IntegrityError:
                return False
            return True

    # ------------------------------------------------------------------ audit

    def audit(self, record: dict[str, Any]) -> None:
        values = {**record, "arguments": json.dumps(record.get("arguments", {}), ensure_ascii=False)}
        with self._lock:
            self._db.execute(
                f"INSERT INTO audit ({', '.join(AUDIT_FIELDS[1:])}) VALUES ({', '.join('?' * 10)})",
                tuple(values.get(name) for name in AUDIT_FIELDS[1:]),
            )

    def recent(self, limit: int = 50, tenants: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The latest records, newest first: of these accounts (or token pseudonyms), or of all."""
        where = f"WHERE tenant IN ({', '.join('?' * len(tenants))})" if tenants else ""
        params = tenants
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit {where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        records = [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]
        for record in records:
            record["arguments"] = json.loads(record["arguments"])
        return records

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()
