"""The store, on both backends (SQLite in a directory, PostgreSQL on a real server): atomic budgets
and single use under concurrency, also across several store instances (replicas), the append-only
audit enforced by the database itself, intents without an outcome, migrations applied once under
a lock and keeping an older database's rows, approval pages, the token-check cache, OAuth clients
waiting for a grant, and failing closed while PostgreSQL is down."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from relatel_mcp.policy.approvals import Approvals
from relatel_mcp.store import ApprovalPage, Store, StoreUnavailable, open_store
from relatel_mcp.store.schema import POSTGRES, SQLITE

from .services import Postgres

pytestmark = pytest.mark.anyio

RECORD = {
    "at": "now",
    "account": "t",
    "tool": "initiate_call",
    "kind": "costly",
    "arguments": {"to_number": "45"},
}


@pytest.fixture(scope="module")
def postgres() -> Any:
    server = Postgres().start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    """A way to open another store on one shared database: as another replica would."""
    if request.param == "sqlite":
        return lambda: open_store(None, tmp_path)
    server = request.getfixturevalue("postgres")
    url = server.create_database(f"store_{time.monotonic_ns()}")
    return lambda: open_store(url, tmp_path)


@asynccontextmanager
async def replicas(backend: Callable[[], Any], n: int) -> AsyncIterator[list[Store]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(backend()) for _ in range(n)]


async def test_budgets_are_spent_atomically_across_replicas(backend):
    async with replicas(backend, 3) as stores:
        results: list[bool] = []

        async def spend(store: Store) -> None:
            results.append(await store.spend("acct", "2026-11-29", "calls", 1, 7))

        async with anyio.create_task_group() as tasks:
            for i in range(50):
                tasks.start_soon(spend, stores[i % 3])
        assert results.count(True) == 7 and await stores[0].used("acct", "2026-11-29", "calls") == 7
        assert not await stores[1].spend("acct", "2026-11-29", "calls", 8, 14)  # 7 + 8 > 14
        await stores[2].refund("acct", "2026-11-29", "calls", 3)
        assert await stores[0].used("acct", "2026-11-29", "calls") == 4  # exactly what was given back
        await stores[2].refund("acct", "2026-11-29", "calls", 100)
        assert await stores[0].used("acct", "2026-11-29", "calls") == 0  # never below zero
        assert not await stores[0].spend("other", "2026-11-29", "calls", 3, 2)  # more than the limit at once


async def test_a_confirmation_is_used_once_across_replicas(backend):
    async with replicas(backend, 3) as stores:
        results: list[bool] = []

        async def use(store: Store) -> None:
            results.append(await store.use_once("nonce-1", time.time() + 60))

        async with anyio.create_task_group() as tasks:
            for i in range(20):
                tasks.start_soon(use, stores[i % 3])
    assert results.count(True) == 1


async def test_expired_single_use_records_are_cleared_within_64_uses(backend):
    """The table of used confirmations does not grow for ever: a record whose token expired an
    hour ago is gone within 64 more uses (it can never match again: its token has expired). What
    has not expired stays, through every clearing: each of those confirmations is still refused."""
    async with replicas(backend, 1) as (store,):
        await store.use_once("expired", time.time() - 7200)
        for i in range(64):
            assert await store.use_once(f"fresh-{i}", time.time() + 60)
        kept = [
            await store._one("SELECT nonce FROM used_token WHERE nonce=?", n) for n in ("expired", "fresh-63")
        ]
        replayed = [await store.use_once(f"fresh-{i}", time.time() + 60) for i in range(64)]
    assert kept == [None, ("fresh-63",)]
    assert not any(replayed)


async def test_an_oauth_secret_is_taken_once_of_its_kind_while_it_lives(backend):
    """Codes and refresh tokens are single use across replicas: the first take gets the data and
    its grant, every other take nothing; another kind, or an expired secret, is never taken."""
    async with replicas(backend, 3) as stores:
        await stores[0].put_secret("code", "digest-1", "data-1", time.time() + 60, "grant-1")
        await stores[0].put_secret("code", "digest-old", "data-old", time.time() - 1, "grant-1")
        assert await stores[1].take_secret("refresh", "digest-1") is None  # not of that kind
        assert await stores[1].take_secret("code", "digest-old") is None  # expired
        assert await stores[2].secret("code", "digest-1") == ("data-1", "grant-1", False)
        taken: list[Any] = []

        async def take(store: Store) -> None:
            taken.append(await store.take_secret("code", "digest-1"))

        async with anyio.create_task_group() as tasks:
            for i in range(12):
                tasks.start_soon(take, stores[i % 3])
        assert [t for t in taken if t is not None] == [("data-1", "grant-1")] and len(taken) == 12
        assert await stores[0].secret("code", "digest-1") == ("data-1", "grant-1", True)


async def test_the_audit_is_append_only_in_the_database_itself(backend):
    async with backend() as store:
        first = await store.audit({**RECORD, "decision": "sending"})
        await store.audit({**RECORD, "decision": "sent", "status": 200}, intent_id=first)
        await store.audit({**RECORD, "decision": "sending"})  # then the process died
        await store.audit({**RECORD, "decision": "declined"})
        records = await store.recent()
        refused = await _try_to_rewrite(store)
    assert [r["decision"] for r in records] == ["declined", "outcome_unknown", "sent"]
    assert records[1]["detail"] == "sent; the server stopped before it learned the outcome"
    assert records[2]["status"] == 200
    assert all("append-only" in message for message in refused), refused


async def _try_to_rewrite(store: Store) -> list[str]:
    """UPDATE, DELETE (and TRUNCATE) on the audit through a raw connection: each must fail."""
    statements = ["UPDATE audit SET decision='declined'", "DELETE FROM audit"]
    messages = []
    if hasattr(store, "_db"):
        for statement in statements:
            with pytest.raises(sqlite3.IntegrityError) as caught:
                store._db.execute(statement)
            messages.append(str(caught.value))
        return messages
    import psycopg

    async with store._pool.connection() as conn:
        for statement in [*statements, "TRUNCATE audit"]:
            with pytest.raises(psycopg.errors.RaiseException) as caught:
                await conn.execute(statement)
            messages.append(str(caught.value))
    return messages


async def test_migrations_apply_once_when_replicas_start_together(backend):
    opened: list[Store] = []

    async def start() -> None:
        async with backend() as store:
            opened.append(store)
            await store.used("t", "d", "calls")

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(start)
    async with backend() as store:
        versions = await store._run(
            store._sql("SELECT version FROM schema_version ORDER BY version"), (), "all"
        )
    assert len(opened) == 4 and [v[0] for v in versions] == list(range(1, len(SQLITE) + 1))


async def test_a_sqlite_file_from_before_migrations_is_taken_over(tmp_path):
    legacy = sqlite3.connect(tmp_path / "state.db")
    legacy.executescript(
        "CREATE TABLE budget (tenant TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, used INTEGER NOT NULL,"
        " PRIMARY KEY (tenant, day, kind));"
        "CREATE TABLE used_token (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, tenant TEXT NOT NULL,"
        " tool TEXT NOT NULL, kind TEXT NOT NULL, arguments TEXT NOT NULL, channel TEXT, decision TEXT NOT NULL,"
        " status INTEGER, upstream_id TEXT, detail TEXT);"
        "INSERT INTO budget VALUES ('t', 'd', 'calls', 3);"
        "INSERT INTO audit (at, tenant, tool, kind, arguments, decision) VALUES ('then', 't', 'x', 'costly', '{}', 'sent');"
    )
    legacy.commit()
    legacy.close()
    async with open_store(None, tmp_path) as store:
        assert await store.used("t", "d", "calls") == 3
        assert [r["decision"] for r in await store.recent()] == ["sent"]


async def test_oauth_clients_that_complete_no_grant_are_capped_and_expire(backend):
    async with replicas(backend, 2) as (a, b):
        since = time.time() - 60
        assert await a.save_oauth_client("c1", "{}", since, 2) and await b.save_oauth_client(
            "c2", "{}", since, 2
        )
        assert not await a.save_oauth_client("c3", "{}", since, 2)  # two wait already
        await b.save_grant("g1", "c1", "account", "sealed")  # c1 completes a grant: it waits no more
        assert await a.save_oauth_client("c3", "{}", since, 2)
        later = time.time() + 1  # all of them registered before this
        assert await b.oauth_client("c1", later) == "{}" and await b.oauth_client("c2", later) is None
        assert await a.save_oauth_client("c4", "{}", later, 1)  # c2 and c3 have expired
        assert await b.oauth_client("c3", since) is None  # and were deleted


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_oauth_clients_from_before_the_registration_limits_are_kept(kind, request, tmp_path):
    """Migration 4 on a database at version 3: a client with a grant counts as granted, one without
    waits from the migration on (it neither vanishes at once nor waits forever)."""
    rows = [
        "INSERT INTO oauth_client (client_id, info) VALUES ('granted', '{}'), ('waiting', '{}')",
        "INSERT INTO oauth_grant (id, client_id, account, relatel_token, created) VALUES ('g', 'granted', 'a', 't', 1)",
    ]
    url = _at_version(3, rows, kind, request, tmp_path)
    async with open_store(url, tmp_path) as store:
        now = time.time()
        assert await store.oauth_client("granted", now + 3600) == "{}"  # granted: it never expires
        assert await store.oauth_client("waiting", now - 60) == "{}"  # waiting since the migration
        assert await store.oauth_client("waiting", now + 3600) is None
        assert await store.save_oauth_client("new", "{}", now - 60, 2)
        assert not await store.save_oauth_client("newer", "{}", now - 60, 2)  # 'waiting' and 'new' wait


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_budgets_and_audit_records_are_kept_when_tenant_is_renamed_account(kind, request, tmp_path):
    """Migration 5 on a database at version 4: the budget's and the audit's `tenant` columns are
    called `account`, with every row in them, the budget's key and the audit's index and triggers."""
    audit = "INSERT INTO audit (at, tenant, tool, kind, arguments, decision, status, intent_id) VALUES "
    rows = [
        "INSERT INTO budget (tenant, day, kind, used) VALUES ('acct', 'd', 'calls', 3), ('other', 'd', 'calls', 1)",
        audit + "('then', 'acct', 'initiate_call', 'costly', '{}', 'sending', NULL, NULL)",
        audit + "('then', 'acct', 'initiate_call', 'costly', '{}', 'sent', 200, 1)",
        audit + "('then', 'token:0123456789abcdef', 'initiate_call', 'costly', '{}', 'invalid', NULL, NULL)",
        audit + "('then', 'other', 'send_sms', 'costly', '{}', 'declined', NULL, NULL)",
    ]
    url = _at_version(4, rows, kind, request, tmp_path)
    async with open_store(url, tmp_path) as store:
        assert await store.used("acct", "d", "calls") == 3 and await store.used("other", "d", "calls") == 1
        assert await store.spend("acct", "d", "calls", 2, 5)
        assert not await store.spend("acct", "d", "calls", 1, 5)
        assert await store.used("acct", "d", "calls") == 5  # one row per account, day and kind still
        await store.refund("other", "d", "calls", 1)
        assert await store.used("other", "d", "calls") == 0
        mine = await store.recent(accounts=("acct", "token:0123456789abcdef"))
        assert [(r["account"], r["decision"], r["status"]) for r in mine] == [
            ("token:0123456789abcdef", "invalid", None),
            ("acct", "sent", 200),  # the intent merged with its outcome
        ]
        await store.audit({**RECORD, "account": "other", "decision": "refused"})
        assert [(r["account"], r["decision"]) for r in await store.recent(accounts=("other",))] == [
            ("other", "refused"),
            ("other", "declined"),
        ]
        assert len(await store.recent()) == 4
        if kind == "sqlite":
            indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'"
        else:
            indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'audit'"
        names = {row[0] for row in await store._run(indexes, (), "all")}
        assert "audit_account" in names and "audit_tenant" not in names
        refused = await _try_to_rewrite(store)
    assert all("append-only" in message for message in refused), refused


def _at_version(
    version: int, rows: list[str], kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> str | None:
    """A database of `kind` migrated to `version` only, with `rows` in it: its URL (None: SQLite
    in `tmp_path`)."""
    if kind == "sqlite":
        db = sqlite3.connect(tmp_path / "state.db")
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, script in enumerate(SQLITE[:version], start=1):
            db.executescript(script)
            db.execute("INSERT INTO schema_version VALUES (?)", (number,))
        for row in rows:
            db.execute(row)
        db.commit()
        db.close()
        return None
    import psycopg

    url: str = request.getfixturevalue("postgres").create_database(f"store_{time.monotonic_ns()}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, script in enumerate(POSTGRES[:version], start=1):
            conn.execute(script)
            conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
        for row in rows:
            conn.execute(row)
    return url


async def test_an_approval_page_is_answered_once_and_only_while_it_lives(backend):
    async with replicas(backend, 2) as (a, b):
        await a.open_page(ApprovalPage("p1", "Call +45 28 11 44 77?", "initiate_call", time.time() + 60))
        await a.open_page(ApprovalPage("old", "?", "initiate_call", time.time() - 1))
        assert (await b.page("p1")).decision is None and await b.page("old") is None
        assert await b.decide("p1", "approve") and not await a.decide("p1", "decline")
        assert (await a.page("p1")).decision == "approve" and not await a.decide("old", "approve")
        await a.close_page("p1")
        assert await b.page("p1") is None


async def test_a_page_asked_on_one_replica_is_answered_on_another(backend):
    """The replica that shows the page need not be the one waiting: the answer given on one
    reaches the waiter on the other, up to the page's last moment."""
    async with replicas(backend, 2) as (a, b):
        asking, showing = Approvals(a), Approvals(b)
        page = await asking.open("Call +45 28 11 44 77?", "initiate_call", ttl=60)
        assert await showing.decide(page.id, "approve") and not await showing.decide(page.id, "decline")
        assert await asking.wait(page) == "approve"
        late = await asking.open("Call +45 28 11 44 77?", "initiate_call", ttl=60)
        assert await asking.decide(late.id, "decline")
        # the waiter's own copy of the page has under a second left: the answer still counts
        assert await asking.wait(replace(late, expires=time.time() + 0.9)) == "decline"


async def test_the_token_check_cache_is_shared(backend):
    async with replicas(backend, 2) as (a, b):
        await a.remember_account("token-1", "account-1", time.time() + 300)
        await a.remember_account("token-2", None, time.time() + 30)
        assert (await b.account_of("token-1"))[0] == "account-1"
        assert (await b.account_of("token-2"))[0] is None and await b.account_of("token-3") is None


async def test_while_postgres_is_down_every_operation_fails_closed_then_recovers(tmp_path):
    server = Postgres().start()
    try:
        async with open_store(server.create_database("down"), tmp_path) as store:
            assert await store.spend("t", "d", "calls", 1, 5)
            server.stop()
            for operation in (
                store.spend("t", "d", "calls", 1, 5),
                store.audit({**RECORD, "decision": "sending"}),
            ):
                with pytest.raises(StoreUnavailable):
                    await operation
            server.start()
            assert await store.spend("t", "d", "calls", 1, 5)  # the same pool, reconnected
            assert await store.used("t", "d", "calls") == 2
    finally:
        server.remove()


async def test_a_server_started_while_postgres_is_down_migrates_when_it_is_back(tmp_path):
    server = Postgres().start()
    url = server.create_database("late")
    server.stop()
    try:
        async with open_store(url, tmp_path) as store:
            with pytest.raises(StoreUnavailable):
                await store.used("t", "d", "calls")
            server.start()
            assert await store.spend("t", "d", "calls", 1, 5)
    finally:
        server.remove()


# ------------------------------------------------------------------ through the server


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL server of this test's own, to stop and start."""
    server = Postgres().start()
    yield server
    server.remove()


async def test_while_the_store_is_down_gated_calls_fail_closed_and_reads_go_on(
    sandbox, own_postgres, tmp_path
):
    from .support import answering, connect, error_of, sent

    url = own_postgres.create_database("server")
    async with connect(
        sandbox.url, store=url, state_dir=tmp_path, elicitation_callback=answering("accept")
    ) as s:
        own_postgres.stop()
        down = error_of(await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"}))
        read = await s.call_tool("list_tags", {})
        own_postgres.start()  # the same server process goes on, with no restart
        back = await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    assert (down["code"], down["retryable"]) == ("unavailable", True) and "Nothing was sent" in down[
        "message"
    ]
    assert not read.is_error and not back.is_error
    assert sent(sandbox) == [("POST", "/api/v2/switch/dial")]


async def test_a_send_whose_outcome_cannot_be_written_reads_as_outcome_unknown(
    sandbox, own_postgres, tmp_path
):
    from relatel_mcp.policy import Policy

    from .support import audit_log, connect, until_held

    url = own_postgres.create_database("server")
    sandbox.fault(method="POST", path="/api/v2/switch/dial", hold=True)  # performed, its answer held
    async with connect(sandbox.url, store=url, state_dir=tmp_path, policy=Policy(costly="allow")) as session:
        async with anyio.create_task_group() as tasks:
            result: dict[str, Any] = {}

            async def call() -> None:
                result["call"] = await session.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})

            tasks.start_soon(call)
            await until_held(sandbox)  # the call is out: its intent is written, its outcome cannot be
            await anyio.to_thread.run_sync(own_postgres.stop)
            await anyio.to_thread.run_sync(sandbox.release)
        own_postgres.start()
        audit = await audit_log(session)
    assert not result["call"].is_error  # it happened, and the answer says so
    assert audit[0]["decision"] == "outcome_unknown" and "stopped before" in audit[0]["detail"]
    assert len(sandbox.outbox()) == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_an_audit_from_before_retention_is_kept_and_only_a_recorded_prune_removes_from_it(
    kind, request, tmp_path
):
    """Migration 6 on a database at version 5: its records are kept and read as before, a DELETE is
    refused until a prune recorded in the audit covers the rows, and then only those go."""
    from relatel_mcp.policy.audit import prune

    audit = "INSERT INTO audit (at, account, tool, kind, arguments, decision, status, intent_id) VALUES "
    rows = [
        audit
        + "('2020-01-01T00:00:00+00:00', 'acct', 'initiate_call', 'costly', '{}', 'sending', NULL, NULL)",
        audit + "('2020-01-01T00:00:01+00:00', 'acct', 'initiate_call', 'costly', '{}', 'sent', 200, 1)",
        audit
        + "('2999-01-01T00:00:00+00:00', 'acct', 'send_employee_sms', 'costly', '{}', 'declined', NULL, NULL)",
    ]
    url = _at_version(5, rows, kind, request, tmp_path)
    async with open_store(url, tmp_path) as store:
        assert [(r["decision"], r["status"]) for r in await store.recent()] == [
            ("declined", None),
            ("sent", 200),
        ]
        refused = await _try_to_rewrite(store)
        pruned = await prune(store, 30, "command")
        left = await store.recent()
        refused_after = await _try_to_rewrite(store)
    assert all("append-only" in message for message in refused + refused_after), refused + refused_after
    assert pruned is not None and pruned.records == 1
    assert [(r["tool"], r["decision"]) for r in left] == [
        ("audit_retention", "pruned"),
        ("send_employee_sms", "declined"),
    ]
