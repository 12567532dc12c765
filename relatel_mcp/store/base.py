"""The store's interface (`Store`), what it keeps (`ApprovalPage`), its one failure
(`StoreUnavailable`), and private files for the state directory. See the package's docstring."""

from __future__ import annotations

import itertools
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..core.errors import StartUpError
from ..core.metrics import NO_METRICS, Metrics
from .schema import AUDIT_FIELDS, DECISION, PRUNABLE, RECORDS

Fetch = Literal["none", "one", "all"]
LAST_ID = 2**63 - 1  # beyond any record's id (PostgreSQL's BIGINT, SQLite's INTEGER)


class StoreUnavailable(Exception):
    """The store's database cannot be reached now; nothing that needs it may go ahead."""


@dataclass(frozen=True)
class ApprovalPage:
    """An approval page as stored: the question it shows, and the human's decision once made."""

    id: str
    question: str
    tool: str
    expires: float  # Unix time: the same for every replica
    decision: str | None = None


class Store(ABC):
    mark = "?"  # the SQL parameter marker of the backend
    backend = ""  # its name, for the metrics
    metrics: Metrics = NO_METRICS  # counts each statement that meets StoreUnavailable (open_store sets it)
    _calls = itertools.count()

    @abstractmethod
    async def _run(self, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        """Run one statement atomically: its rows for `one`/`all`; StoreUnavailable if unreachable
        (counted in `metrics`)."""

    @abstractmethod
    async def ping(self, timeout: float) -> None:
        """A trivial statement (`SELECT 1`): StoreUnavailable unless the database answers within
        `timeout` seconds (for readiness; not counted as a store error)."""

    @abstractmethod
    async def close(self) -> None: ...

    def _sql(self, sql: str) -> str:
        return sql if self.mark == "?" else sql.replace("?", self.mark)

    async def _one(self, sql: str, *params: Any) -> Any:
        return await self._run(self._sql(sql), params, "one")

    # ------------------------------------------------------------------ budgets

    async def used(self, account: str, day: str, kind: str) -> int:
        row = await self._one(
            "SELECT used FROM budget WHERE account=? AND day=? AND kind=?", account, day, kind
        )
        return int(row[0]) if row else 0

    async def spend(self, account: str, day: str, kind: str, amount: int, limit: int) -> bool:
        """Add `amount` unless that would pass `limit`, in one statement; True when spent."""
        row = await self._one(
            """INSERT INTO budget (account, day, kind, used) SELECT ?, ?, ?, ? WHERE ? <= ?
               ON CONFLICT (account, day, kind) DO UPDATE SET used = budget.used + excluded.used
               WHERE budget.used + excluded.used <= ? RETURNING used""",
            account, day, kind, amount, amount, limit, limit,
        )  # fmt: skip
        return row is not None

    async def refund(self, account: str, day: str, kind: str, amount: int) -> None:
        await self._one(
            "UPDATE budget SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END "
            "WHERE account=? AND day=? AND kind=? RETURNING used",
            amount, amount, account, day, kind,
        )  # fmt: skip

    # ------------------------------------------------------------------ single-use records

    async def use_once(self, nonce: str, expires: float) -> bool:
        """Mark a confirmation used; False if it already was (a replay, here or on another replica)."""
        if next(self._calls) % 64 == 0:
            await self._one("DELETE FROM used_token WHERE expires < ? RETURNING nonce", time.time() - 3600)
        row = await self._one(
            "INSERT INTO used_token (nonce, expires) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING nonce",
            nonce, expires,
        )  # fmt: skip
        return row is not None

    # ------------------------------------------------------------------ approval pages

    async def open_page(self, page: ApprovalPage) -> None:
        await self._one("DELETE FROM approval WHERE expires < ? RETURNING id", time.time() - 3600)
        await self._one(
            "INSERT INTO approval (id, question, tool, expires) VALUES (?, ?, ?, ?) RETURNING id",
            page.id, page.question, page.tool, page.expires,
        )  # fmt: skip

    async def page(self, page_id: str) -> ApprovalPage | None:
        row = await self._one(
            "SELECT id, question, tool, expires, decision FROM approval WHERE id=? AND expires >= ?",
            page_id, time.time(),
        )  # fmt: skip
        return ApprovalPage(*row) if row else None

    async def decide(self, page_id: str, decision: str) -> bool:
        """Record the human's answer, once, while the page lives."""
        row = await self._one(
            "UPDATE approval SET decision=? WHERE id=? AND decision IS NULL AND expires >= ? RETURNING id",
            decision, page_id, time.time(),
        )  # fmt: skip
        return row is not None

    async def close_page(self, page_id: str) -> None:
        await self._one("DELETE FROM approval WHERE id=? RETURNING id", page_id)

    # ------------------------------------------------------------------ token-check cache

    async def account_of(self, token: str) -> tuple[str | None, float] | None:
        """The cached answer for a token pseudonym: (account or None if refused, expiry)."""
        row = await self._one("SELECT account, expires FROM account WHERE token=?", token)
        return (row[0], float(row[1])) if row else None

    async def remember_account(self, token: str, account: str | None, expires: float) -> None:
        if next(self._calls) % 64 == 0:
            await self._one("DELETE FROM account WHERE expires < ? RETURNING token", time.time() - 86_400)
        await self._one(
            "INSERT INTO account (token, account, expires) VALUES (?, ?, ?) ON CONFLICT (token) "
            "DO UPDATE SET account = excluded.account, expires = excluded.expires RETURNING token",
            token, account, expires,
        )  # fmt: skip

    # ------------------------------------------------------------------ OAuth (--auth oauth)

    async def oauth_client(self, client_id: str, waiting_since: float) -> str | None:
        """A client that completed a grant, or registered since `waiting_since` (else it expired)."""
        row = await self._one(
            "SELECT info FROM oauth_client WHERE client_id=? AND (granted IS NOT NULL OR created >= ?)",
            client_id, waiting_since,
        )  # fmt: skip
        return row[0] if row else None

    async def save_oauth_client(
        self, client_id: str, info: str, waiting_since: float, max_waiting: int
    ) -> bool:
        """Register a client unless `max_waiting` clients registered since `waiting_since` have yet
        to complete a grant (False); those registered before that and never granted are deleted.
        One statement decides, so replicas overshoot the cap by at most their concurrent calls."""
        await self._run(
            self._sql("DELETE FROM oauth_client WHERE granted IS NULL AND created < ?"), (waiting_since,)
        )
        row = await self._one(
            "INSERT INTO oauth_client (client_id, info, created) SELECT ?, ?, ? WHERE "
            "(SELECT count(*) FROM oauth_client WHERE granted IS NULL AND created >= ?) < ? RETURNING client_id",
            client_id, info, time.time(), waiting_since, max_waiting,
        )  # fmt: skip
        return row is not None

    async def save_grant(self, grant_id: str, client_id: str, account: str, relatel_token: str) -> None:
        """Keep a grant; its client has now completed one, and no longer expires."""
        now = time.time()
        await self._one(
            "INSERT INTO oauth_grant (id, client_id, account, relatel_token, created) VALUES (?, ?, ?, ?, ?) "
            "RETURNING id",
            grant_id, client_id, account, relatel_token, now,
        )  # fmt: skip
        await self._run(
            self._sql("UPDATE oauth_client SET granted=? WHERE client_id=? AND granted IS NULL"),
            (now, client_id),
        )

    async def grant(self, grant_id: str) -> tuple[str, str, str] | None:
        """(client id, account, the encrypted Relatel token) of a grant that was not revoked."""
        row = await self._one(
            "SELECT client_id, account, relatel_token FROM oauth_grant WHERE id=? AND revoked IS NULL",
            grant_id,
        )
        return (row[0], row[1], row[2]) if row else None

    async def revoke_grant(self, grant_id: str) -> None:
        """End a grant and every secret issued under it."""
        now = time.time()
        await self._one(
            "UPDATE oauth_grant SET revoked=? WHERE id=? AND revoked IS NULL RETURNING id", now, grant_id
        )
        await self._run(
            self._sql("UPDATE oauth_secret SET used=? WHERE grant_id=? AND used IS NULL"), (now, grant_id)
        )

    async def put_secret(
        self, kind: str, digest: str, data: str, expires: float, grant_id: str | None = None
    ) -> None:
        if next(self._calls) % 64 == 0:
            await self._one(
                "DELETE FROM oauth_secret WHERE expires < ? RETURNING digest", time.time() - 86_400
            )
        await self._one(
            "INSERT INTO oauth_secret (digest, kind, grant_id, data, expires) VALUES (?, ?, ?, ?, ?) RETURNING digest",
            digest, kind, grant_id, data, expires,
        )  # fmt: skip

    async def secret(self, kind: str, digest: str) -> tuple[str, str | None, bool] | None:
        """(data, grant id, used already) of a secret of this kind that has not expired."""
        row = await self._one(
            "SELECT data, grant_id, used FROM oauth_secret WHERE digest=? AND kind=? AND expires >= ?",
            digest, kind, time.time(),
        )  # fmt: skip
        return (row[0], row[1], row[2] is not None) if row else None

    async def take_secret(self, kind: str, digest: str) -> tuple[str, str | None] | None:
        """Use a single-use secret, atomically: (data, grant id) the first time, None ever after."""
        row = await self._one(
            "UPDATE oauth_secret SET used=? WHERE digest=? AND kind=? AND used IS NULL AND expires >= ? "
            "RETURNING data, grant_id",
            time.time(), digest, kind, time.time(),
        )  # fmt: skip
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------------ audit

    async def audit(self, record: dict[str, Any], intent_id: int | None = None) -> int:
        """Append one record (an outcome names its intent); its id."""
        values = {**record, "arguments": json.dumps(record.get("arguments", {}), ensure_ascii=False)}
        names = [*AUDIT_FIELDS[1:], "intent_id"]
        row = await self._one(
            f"INSERT INTO audit ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) RETURNING id",
            *(values.get(name) for name in AUDIT_FIELDS[1:]), intent_id,
        )  # fmt: skip
        return int(row[0])

    async def recent(
        self, limit: int = 50, accounts: tuple[str, ...] = (), matching: AuditFilter | None = None
    ) -> list[dict[str, Any]]:
        """The latest attempts that match, newest first, each an intent merged with its outcome: of
        these accounts (or token pseudonyms), or of all."""
        matching = matching or AuditFilter()
        if accounts:
            matching = replace(matching, accounts=accounts)
        return await self._records(matching, "DESC", limit)

    async def audit_records(
        self, matching: AuditFilter | None = None, *, latest: int | None = None, page: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        """The records that match, oldest first: all of them, or the latest `latest`. Read `page`
        at a time, each page after the last one's id (keyset), so that an audit of any size is
        never held whole; the records written after this began are left out, so it ends."""
        matching = matching or AuditFilter()
        top = (await self._one("SELECT max(id) FROM audit"))[0]
        if top is None:
            return
        after = 0
        if latest is not None:  # from the `latest`-th newest on
            rows = await self._records(matching, "DESC", 1, offset=latest - 1, upto=int(top), ids=True)
            after = rows[0] - 1 if rows else 0
        while True:
            records = await self._records(matching, "ASC", page, after=after, upto=int(top))
            for record in records:
                yield record
            if len(records) < page:
                return
            after = records[-1]["id"]

    async def _records(
        self,
        matching: AuditFilter,
        order: Literal["ASC", "DESC"],
        limit: int,
        *,
        after: int = 0,
        upto: int | None = None,
        offset: int = 0,
        ids: bool = False,
    ) -> list[Any]:
        where, params = matching.where()
        if after:
            where, params = f"{where} AND i.id > ?", [*params, after]
        if upto is not None:
            where, params = f"{where} AND i.id <= ?", [*params, upto]
        sql = RECORDS.format(where=where, order=order) + (" OFFSET ?" if offset else "")
        rows = await self._run(self._sql(sql), (*params, limit, *([offset] if offset else [])), "all")
        if ids:
            return [row[0] for row in rows]
        records = [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]
        for record in records:
            record["arguments"] = json.loads(record["arguments"])
        return records

    async def prunable(self, cutoff: str) -> bool:
        """Is there an attempt older than `cutoff` (a stamp), its outcome too, for a prune to remove?"""
        rows = await self._run(self._sql(PRUNABLE), (cutoff, LAST_ID, cutoff, LAST_ID, 1), "all")
        return bool(rows)

    async def prune_audit(self, cutoff: str, prune_id: int, batch: int = 500) -> int:
        """Delete the attempts older than `cutoff` (a stamp) written before the prune record
        `prune_id`, each intent with its outcome, `batch` at a time; how many. The database lets
        only rows that prune record covers go (schema.py, version 6)."""
        removed = 0
        while True:
            rows = await self._run(self._sql(PRUNABLE), (cutoff, prune_id, cutoff, prune_id, batch), "all")
            ids = [row[0] for row in rows]
            if not ids:
                return removed
            marks = ", ".join("?" * len(ids))
            await self._run(
                self._sql(f"DELETE FROM audit WHERE id IN ({marks}) OR intent_id IN ({marks}) RETURNING id"),
                (*ids, *ids),
                "all",
            )
            removed += len(ids)


@dataclass(frozen=True)
class AuditFilter:
    """Which attempts: each field given narrows them, and an empty one does not. `since` and
    `until` are stamps (`stamp`): from `since` on, and before `until`; `decisions` are the
    merged record's (`outcome_unknown` for an intent without its outcome)."""

    since: str | None = None
    until: str | None = None
    tools: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        """SQL for the intent `i` and its outcome `o`, with `?` parameters: "AND ..." and its values."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("i.at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("i.at < ?")
            params.append(self.until)
        for column, values in (("i.tool", self.tools), (f"({DECISION})", self.decisions),
                               ("i.account", self.accounts)):  # fmt: skip
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        return "".join(f" AND {clause}" for clause in clauses), params


def stamp(moment: datetime) -> str:
    """A moment as the audit writes it (`at`): UTC, ISO 8601, to the second. Stamps of this one
    format sort as text in the order of time, which is how the store compares them."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def private_directory(directory: Path) -> Path:
    """`directory`, created if need be, readable by this user only; a StartUpError if it cannot be
    (e.g. a Docker volume that root owns, for a server that runs as another user)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    except OSError as exc:
        raise unusable_state_directory(directory, exc) from None
    return directory


def private_file(path: Path) -> Path:
    """`path`, created empty if need be, readable by this user only; a StartUpError if it cannot be."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        path.chmod(0o600)
    except OSError as exc:
        raise unusable_state_directory(path.parent, exc) from None
    return path


def unusable_state_directory(directory: Path, exc: OSError) -> StartUpError:
    """One line a user can act on, instead of a traceback: which directory, why, and what to do."""
    reason = (exc.strerror or type(exc).__name__).lower()
    uid = os.getuid() if hasattr(os, "getuid") else None
    user = f"this user (uid {uid})" if uid is not None else "this user"
    fix = ""
    if isinstance(exc, PermissionError) and uid is not None:
        fix = (
            f"make it theirs (chown -R {uid} {directory}), or "
            if os.path.isdir(directory)  # False where it cannot be looked at either
            else f"create it for them (mkdir -p {directory} && chown {uid} {directory}), or "
        )
    return StartUpError(
        f"the state directory {directory} cannot be used by {user}: {reason}; {fix}choose a directory "
        "this user can write with RELATEL_MCP_STATE_DIR or --state-dir"
    )
