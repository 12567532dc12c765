"""The audit as a record an operator answers from: `relatel-mcp audit` run for real against an
audit that real gated calls through an MCP client filled (and, for age, records written through
the store's API with old timestamps). Each filter narrows to exactly the records it names, and
the database does the narrowing; JSON lines and CSV read back into the records the store holds;
a bad filter value is one line naming its flag (exit 2); retention prunes exactly the records
older than it, an intent with its outcome, recorded as a prune of its own, on demand, at a
server's start-up, and at most once an interval across replicas. With RELATEL_MCP_TEST_STORE=postgres
all of it runs against PostgreSQL (tests/stores.py)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from relatel_mcp.app import assemble
from relatel_mcp.cli import keep_audit, main
from relatel_mcp.policy.audit import DECISIONS, RETENTION_TOOL, prune_due
from relatel_mcp.store import AuditFilter, Store, open_store, stamp
from relatel_mcp.store.postgres import PostgresStore
from relatel_mcp.store.schema import AUDIT_FIELDS
from relatel_mcp.store.sqlite import SqliteStore

from .services import Postgres
from .stores import STORES
from .support import EXE, answering, connect, env, run, settings_for
from .test_cli import one_line, serving

pytestmark = pytest.mark.anyio

CALL = ("initiate_call", {"to_number": "+45 28 11 44 77"})
# What a CSV or a terminal could trip on, in what an agent sends: letters beyond ASCII, a comma,
# quotes, a line break, and a cell that a spreadsheet would take for a formula.
BODY = '=SUM(1,2) Hej Søren, "kl. 14" på Ærø\nVi ses'
OLD = {"account": "0123456789abcdef", "tool": "initiate_call", "kind": "costly"}


def where(state_dir: Path) -> list[str]:
    """The store of a test server with this state directory, as `relatel-mcp audit` is told it."""
    url = STORES.databases.get(state_dir)
    return ["--store", url] if url else ["--state-dir", str(state_dir)]


def audit(capsys: pytest.CaptureFixture[str], state_dir: Path, *args: str) -> str:
    """`relatel-mcp audit ...` run in this process: what it printed."""
    capsys.readouterr()
    main(["audit", *where(state_dir), *args])
    return capsys.readouterr().out


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def from_csv(text: str) -> list[dict[str, Any]]:
    """CSV read back as docs/audit.md says: the header names the fields, `arguments` is JSON, `id`
    and `status` are numbers, and an empty cell is null."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(AUDIT_FIELDS)
    records = []
    for row in rows[1:]:
        record: dict[str, Any] = {k: (v if v != "" else None) for k, v in zip(rows[0], row, strict=True)}
        record["arguments"] = json.loads(record["arguments"])
        record["id"] = int(record["id"])
        record["status"] = None if record["status"] is None else int(record["status"])
        records.append(record)
    return records


async def everything(state_dir: Path) -> list[dict[str, Any]]:
    """Every record, oldest first, as the store itself gives them."""
    async with open_store(STORES.url_for(state_dir), state_dir) as store:
        return [record async for record in store.audit_records()]


async def write_old(store: Store, days: float, decision: str = "sent", **fields: Any) -> int:
    """A record of `days` ago through the store's API (a send: its intent, then its outcome); the
    id of its intent (or of the record)."""
    at = stamp(datetime.now(UTC) - timedelta(days=days))
    record = {**OLD, "at": at, "arguments": {"to_number": "4528114477"}, **fields}
    if decision != "sent":
        return await store.audit({**record, "decision": decision})
    intent = await store.audit({**record, "decision": "sending"})
    await store.audit({**record, "decision": "sent", "status": 200, "upstream_id": "id=9"}, intent_id=intent)
    return intent


# ------------------------------------------------------------------ an audit filled by real calls


@dataclass
class Filled:
    state_dir: Path
    records: list[dict[str, Any]]  # every one, oldest first, as the store gives them

    def named(self, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if all(r[k] == v for k, v in fields.items())]


@pytest.fixture(scope="module")
def filled(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """Mette's calls, SMS, a refusal, an invalid call and a declined delete; Jonas's call; and 30
    records of Mette's account written 2 to 400 days ago."""
    state_dir = tmp_path_factory.mktemp("audit")
    sandbox.reset()
    yes, no = answering("accept"), answering("decline")

    async def fill() -> list[dict[str, Any]]:
        async with connect(sandbox.url, state_dir=state_dir, elicitation_callback=yes) as mette:
            assert not (await mette.call_tool(*CALL)).is_error
            assert not (await mette.call_tool("send_employee_sms", {"id": 2, "body": BODY})).is_error
            await mette.call_tool("initiate_call", {"to_number": "+45 90 90 90 90"})  # premium rate: refused
            await mette.call_tool("initiate_call", {"to_number": "nope"})  # invalid
        async with connect(sandbox.url, state_dir=state_dir, elicitation_callback=no) as mette:
            await mette.call_tool("delete_contact", {"id": 3})  # declined
        async with connect(
            sandbox.url, state_dir=state_dir, token="sandbox-employee", elicitation_callback=yes
        ) as jonas:
            assert not (await jonas.call_tool(*CALL)).is_error
        real = await everything(state_dir)
        async with open_store(STORES.url_for(state_dir), state_dir) as store:
            for n in range(30):
                await write_old(
                    store, 2 + n * 13.7, "sent" if n % 3 else "declined", account=real[0]["account"]
                )
        return await everything(state_dir)

    return Filled(state_dir, anyio.run(fill))


def test_the_real_calls_are_in_the_audit_as_they_happened(filled):
    real = [
        (r["tool"], r["decision"])
        for r in filled.records
        if r["at"] >= stamp(datetime.now(UTC) - timedelta(hours=1))
    ]
    assert real == [  # a 2026-07-28 client's question is a round of its own: asked, then the outcome
        ("initiate_call", "asked"),
        ("initiate_call", "sent"),
        ("send_employee_sms", "asked"),
        ("send_employee_sms", "sent"),
        ("initiate_call", "refused"),
        ("initiate_call", "invalid"),
        ("delete_contact", "asked"),
        ("delete_contact", "declined"),
        ("initiate_call", "asked"),
        ("initiate_call", "sent"),
    ]
    assert len({r["account"] for r in filled.records}) == 2  # Mette's and Jonas's


def _day(filled: Filled) -> str:
    """The day of a record written long ago (at some time of that day): a day with a record in it."""
    return filled.records[-5]["at"][:10]


def _days_ago(days: int, *, time_of_day: bool = False) -> str:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.isoformat(timespec="seconds") if time_of_day else moment.date().isoformat()


FILTERS: list[tuple[str, Any, Any]] = [
    ("tool", lambda f: ["--tool", "delete_contact"], lambda r, f: r["tool"] == "delete_contact"),
    (
        "tools, repeated and as a list",
        lambda f: ["--tool", "send_employee_sms,delete_contact", "--tool", "send_employee_sms"],
        lambda r, f: r["tool"] in ("send_employee_sms", "delete_contact"),
    ),
    ("decision", lambda f: ["--decision", "declined"], lambda r, f: r["decision"] == "declined"),
    ("merged decision", lambda f: ["--decision", "refused,invalid"], lambda r, f: r["decision"] in ("refused", "invalid")),
    (
        "account",
        lambda f: ["--account", f.named(tool="initiate_call")[-1]["account"]],
        lambda r, f: r["account"] == f.named(tool="initiate_call")[-1]["account"],
    ),
    ("since a date: from its start", lambda f: ["--since", _day(f)], lambda r, f: r["at"][:10] >= _day(f)),
    ("until a date: to its end", lambda f: ["--until", _day(f)], lambda r, f: r["at"][:10] <= _day(f)),
    (
        "a date-time with a zone",
        lambda f: ["--since", (datetime.now(UTC) - timedelta(days=100)).astimezone(
            timezone(timedelta(hours=2))).isoformat(timespec="seconds")],
        lambda r, f: r["at"] >= _days_ago(100, time_of_day=True),
    ),
    (
        "a date-time without a zone is UTC",
        lambda f: ["--until", _days_ago(100, time_of_day=True)[:19]],
        lambda r, f: r["at"] < _days_ago(100, time_of_day=True),
    ),
    (
        "all of them at once",
        lambda f: ["--tool", "initiate_call", "--decision", "sent", "--since", _days_ago(200), "--until", _days_ago(3)],
        lambda r, f: r["tool"] == "initiate_call" and r["decision"] == "sent"
        and f"{_days_ago(200)}T00:00:00+00:00" <= r["at"] < f"{_days_ago(2)}T00:00:00+00:00",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "expected"), [(f[1], f[2]) for f in FILTERS], ids=[f[0] for f in FILTERS])
def test_each_filter_narrows_to_exactly_the_records_it_names(filled, capsys, flags, expected):
    shown = jsonl(audit(capsys, filled.state_dir, "--format", "jsonl", *flags(filled)))
    wanted = [r for r in filled.records if expected(r, filled)]
    assert shown == wanted
    assert 0 < len(wanted) < len(filled.records)


def test_the_table_shows_the_latest_20_and_an_export_every_record(filled, capsys):
    table = audit(capsys, filled.state_dir)
    stamps = [line.split()[0] for line in table.splitlines() if not line.startswith(" ")]
    assert stamps == [r["at"] for r in filled.records[-20:]]  # the latest 20, oldest first
    assert jsonl(audit(capsys, filled.state_dir, "--json")) == filled.records  # --json: jsonl, all
    assert jsonl(audit(capsys, filled.state_dir, "--format", "jsonl", "--limit", "3")) == filled.records[-3:]
    declined = filled.named(decision="declined")
    assert (
        from_csv(audit(capsys, filled.state_dir, "--format", "csv", "--decision", "declined", "--limit", "2"))
        == declined[-2:]
    )
    assert audit(capsys, filled.state_dir, "--tool", "order_m2m_activation") == "No audit records match.\n"


def test_jsonl_and_csv_exports_read_back_into_the_records_the_store_holds(filled, capsys):
    lines = audit(capsys, filled.state_dir, "--format", "jsonl")
    table = audit(capsys, filled.state_dir, "--format", "csv")
    assert jsonl(lines) == filled.records
    assert from_csv(table) == filled.records
    sms = filled.named(tool="send_employee_sms")[0]
    assert sms["arguments"]["body"] == BODY  # exact, as it was sent
    assert lines.isascii() and table.isascii()  # nothing beyond ASCII reaches a terminal


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each query of audit records brought out of the database."""
    counts: list[int] = []
    for cls in (SqliteStore, PostgresStore):
        run = cls._run

        async def counting(
            self: Store, sql: str, params: Any = (), fetch: Any = "none", run: Any = run
        ) -> Any:
            rows = await run(self, sql, params, fetch)
            if fetch == "all" and "FROM audit i" in sql:
                counts.append(len(rows))
            return rows

        monkeypatch.setattr(cls, "_run", counting)
    return counts


async def test_filters_are_applied_by_the_database(filled, fetched):
    async with open_store(STORES.url_for(filled.state_dir), filled.state_dir) as store:
        declined = [r async for r in store.audit_records(AuditFilter(decisions=("declined",)))]
        sms = [r async for r in store.audit_records(AuditFilter(tools=("send_employee_sms",)))]
    assert declined == filled.named(decision="declined") and sms == filled.named(tool="send_employee_sms")
    assert fetched == [len(declined), len(sms)]  # only those rows left the database


async def test_an_export_is_read_a_page_at_a_time_and_ends(tmp_path, fetched):
    """However large the audit, and however many records are written while it is read."""
    async with open_store(STORES.url_for(tmp_path), tmp_path) as store:
        for days in range(11):
            await write_old(store, days)
        written = await everything_in(store)
        fetched.clear()
        read = []
        async for record in store.audit_records(page=4):
            read.append(record)
            await write_old(store, 0, "refused")  # a busy server goes on writing
            if len(read) > 3 * len(written):
                break
        assert read == written and fetched == [4, 4, 3]
        written = await everything_in(store)
        fetched.clear()
        latest = [r async for r in store.audit_records(latest=5, page=2)]
        assert latest == written[-5:] and fetched == [1, 2, 2, 1]  # the 5th newest's id, then 3 pages


async def everything_in(store: Store) -> list[dict[str, Any]]:
    return [record async for record in store.audit_records()]


# ------------------------------------------------------------------ mistakes


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is no ISO date or date-time"),
        (["--until", "2026-13-01"], "--until '2026-13-01' is no ISO date or date-time"),
        (["--until", "9999-12-31"], "--until '9999-12-31' is no ISO date or date-time of the years 1 to 9999"),
        (["--since", "2026-11-30", "--until", "2026-11-29"], "--since 2026-11-30 is not before --until 2026-11-29"),
        (["--tool", "initate_call"], "--tool 'initate_call' is no tool; did you mean initiate_call?"),
        (["--tool", "send_sms"], "--tool 'send_sms' is no tool; did you mean send_employee_sms?"),
        (["--tool", "list_tags"], "--tool 'list_tags' is not audited (only costly and destructive tools are)"),
        (["--decision", "approved"], "--decision 'approved' is no decision of the audit; the decisions: " + ", ".join(DECISIONS)),
        (["--limit", "0"], "--limit must be at least 1, not 0"),
        (["--json", "--format", "csv"], "--json is --format jsonl, and cannot go with --format csv"),
        (["--prune"], "--prune needs a retention: set RELATEL_MCP_AUDIT_RETENTION_DAYS"),
        (["--prune", "--audit-retention-days", "30", "--tool", "initiate_call"], "--prune removes by age alone: it takes no --tool"),
    ],
)  # fmt: skip
def test_a_bad_filter_is_one_line_naming_the_flag(tmp_path, capsys, monkeypatch, args, says):
    for name in ("RELATEL_MCP_AUDIT_RETENTION_DAYS", "RELATEL_MCP_STORE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as stopped:
        main(["audit", "--state-dir", str(tmp_path), *args])
    out, err = capsys.readouterr()
    done = subprocess.CompletedProcess(["relatel-mcp", "audit"], stopped.value.code, out, err)
    assert says in one_line(done) and out == ""


def test_a_bad_filter_is_one_line_from_the_installed_command_too(tmp_path):
    done = run([EXE, "audit", "--state-dir", str(tmp_path), "--decision", "sent,approved"], env=env(), timeout=60,
               stdin=subprocess.DEVNULL)  # fmt: skip
    assert one_line(done).startswith("relatel-mcp: --decision 'approved' is no decision of the audit")
    assert done.stdout == "" and not (tmp_path / "state.db").exists()


# ------------------------------------------------------------------ retention


def raw_rows(state_dir: Path) -> dict[int, tuple[Any, ...]]:
    """Every row of the audit table, by id, read past the store."""
    return {row[0]: row for row in STORES.audit_rows(state_dir)}


def test_a_prune_removes_exactly_the_attempts_older_than_the_retention_and_is_recorded(
    sandbox, tmp_path, capsys, monkeypatch
):
    async def fill() -> tuple[list[int], int]:
        async with connect(
            sandbox.url, state_dir=tmp_path, elicitation_callback=answering("accept")
        ) as session:
            assert not (await session.call_tool(*CALL)).is_error
        async with open_store(STORES.url_for(tmp_path), tmp_path) as store:
            gone = [
                await write_old(store, 100),  # a send and its outcome, long ago
                await write_old(store, 100, "sending"),  # a send the server stopped in: outcome unknown
                await write_old(store, 30.01, "declined"),  # just past the retention
            ]
            earlier = await write_old(store, 60, "pruning", account="server", tool=RETENTION_TOOL,
                                      arguments={"older_than": "2026-01-01T00:00:00+00:00"})  # fmt: skip
            await store.audit({**OLD, "at": stamp(datetime.now(UTC) - timedelta(days=60)), "arguments": {},
                               "decision": "pruned", "tool": RETENTION_TOOL}, intent_id=earlier)  # fmt: skip
            gone.append(earlier)  # a prune's own records age as the others do
            straddling = await write_old(store, 31, "sending")  # its outcome came within the retention
            await store.audit({**OLD, "at": stamp(datetime.now(UTC) - timedelta(days=29)), "arguments": {},
                               "decision": "failed"}, intent_id=straddling)  # fmt: skip
            await write_old(store, 29.99, "declined")  # not yet past it
            await write_old(store, 0, "sending")  # a send out right now: its outcome is still to come
        return gone, straddling

    gone, straddling = anyio.run(fill)
    before = raw_rows(tmp_path)
    removed = {i for i, row in before.items() if i in gone or row[-1] in gone}  # intents, their outcomes

    monkeypatch.setenv("RELATEL_MCP_AUDIT_RETENTION_DAYS", "30")
    said = audit(capsys, tmp_path, "--prune")
    after = raw_rows(tmp_path)

    assert said.startswith("Pruned 4 audit records older than ")
    assert set(before) - set(after) == removed and len(removed) == 6
    assert (
        straddling in after
        and [row[3] for row in after.values() if row[0] not in before] == [RETENTION_TOOL] * 2
    )
    (record,) = jsonl(audit(capsys, tmp_path, "--json", "--tool", RETENTION_TOOL))
    cutoff = record["arguments"]["older_than"]
    assert (record["decision"], record["channel"], record["account"]) == ("pruned", "command", "server")
    assert (
        record["arguments"]["retention_days"] == 30
        and record["detail"] == f"4 records older than {cutoff} removed"
    )
    assert abs(datetime.fromisoformat(cutoff) - (datetime.now(UTC) - timedelta(days=30))) < timedelta(
        minutes=1
    )
    assert audit(capsys, tmp_path, "--prune").startswith("Nothing to prune")
    assert raw_rows(tmp_path) == after  # a prune that finds nothing writes nothing
    assert _rewrites_refused(tmp_path, min(after)) == ["append-only"] * 3


def _rewrites_refused(state_dir: Path, kept: int) -> list[str]:
    """A prune opens no other way out of the audit: deleting a kept record, every record, or
    changing one is still refused by the database."""
    statements = [
        f"DELETE FROM audit WHERE id = {kept}",
        "DELETE FROM audit",
        "UPDATE audit SET decision = 'sent'",
    ]
    refused = []
    url = STORES.databases.get(state_dir)
    for statement in statements:
        try:
            if url is None:
                with sqlite3.connect(state_dir / "state.db") as db:
                    db.execute(statement)
            else:
                import psycopg

                with psycopg.connect(url) as conn:
                    conn.execute(statement)
        except Exception as exc:
            refused.append("append-only" if "append-only" in str(exc) else str(exc))
    return refused


async def until(condition: Any, timeout: float = 15) -> None:
    with anyio.fail_after(timeout):
        while not await condition():
            await anyio.sleep(0.05)


async def prunes(store: Store) -> list[dict[str, Any]]:
    return await store.recent(50, matching=AuditFilter(tools=(RETENTION_TOOL,)))


def test_a_server_prunes_at_start_up_and_says_so(tmp_path):
    async def fill() -> tuple[int, int]:
        async with open_store(STORES.url_for(tmp_path), tmp_path) as store:
            return await write_old(store, 400), await write_old(store, 10, "declined")

    old, kept = anyio.run(fill)
    shared = {"RELATEL_MCP_SECRET": "s" * 32} if STORES.databases.get(tmp_path) else {}
    with serving("--sandbox", "--auth", "none", *where(tmp_path), RELATEL_MCP_AUDIT_RETENTION_DAYS="90",
                 **shared) as served:  # fmt: skip
        deadline = time.monotonic() + 15
        while old in raw_rows(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        served.stop()
    rows = raw_rows(tmp_path)
    assert old not in rows and kept in rows
    assert [(row[3], row[6], row[7]) for row in rows.values() if row[0] > kept] == [
        (RETENTION_TOOL, "server", "pruning"),
        (RETENTION_TOOL, "server", "pruned"),
    ]
    (line,) = served.logged("audit_pruned")
    assert line["records"] == 1 and line["older_than"] < stamp(datetime.now(UTC) - timedelta(days=89))


async def test_replicas_sharing_a_store_prune_once_an_interval_whichever_does_it(sandbox, tmp_path):
    every = 2.0
    settings = settings_for(sandbox.url, state_dir=tmp_path, audit_retention_days=30)
    async with assemble(settings) as one, assemble(settings) as other:
        store = one.gate.store
        first = await write_old(store, 100)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(keep_audit, one, every)  # one starts: it prunes
            await until(lambda: _pruned(store, 1))
            second = await write_old(store, 100)
            # The other starts within the interval: what it does first (keep_audit), it finds not due.
            assert await prune_due(other.gate.store, 30, every) is None
            tasks.start_soon(keep_audit, other, every)
            assert second in [r["id"] for r in await everything_in(store)] and len(await prunes(store)) == 1
            await until(lambda: _pruned(store, 2), timeout=every + 5)  # an interval on: one of them does
            tasks.cancel_scope.cancel()
        ids = [r["id"] for r in await everything_in(store)]
    assert first not in ids and second not in ids
    assert [(r["decision"], r["channel"], r["detail"].split()[0]) for r in await _all_prunes(settings)] == [
        ("pruned", "server", "1"),
        ("pruned", "server", "1"),
    ]


async def _pruned(store: Store, times: int) -> bool:
    return sum(r["decision"] == "pruned" for r in await prunes(store)) >= times


async def _all_prunes(settings: Any) -> list[dict[str, Any]]:
    async with open_store(settings.store, settings.state_dir) as store:
        return list(reversed(await prunes(store)))


async def test_without_a_retention_every_record_is_kept(sandbox, tmp_path):
    settings = settings_for(sandbox.url, state_dir=tmp_path)
    async with assemble(settings) as app:
        old = await write_old(app.gate.store, 3650)
        with anyio.fail_after(5):
            await keep_audit(app, every=0.01)  # returns at once: there is nothing to keep doing
        assert [r["id"] for r in await everything_in(app.gate.store)] == [old]


def test_the_audit_page_describes_every_field_and_decision():
    page = (Path(__file__).resolve().parents[1] / "docs" / "audit.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| `")}
    assert {f"`{name}`" for name in (*AUDIT_FIELDS, *DECISIONS)} <= rows


async def test_a_prune_that_fails_is_said_and_tried_again_and_serving_goes_on(sandbox, tmp_path, caplog):
    """A PostgreSQL store down at a server's start-up: the prune is a warning line, the next one
    (with the store back) removes what is due."""
    server = Postgres().start()
    try:
        url = server.create_database("retention")
        settings = settings_for(
            sandbox.url, state_dir=tmp_path, store=url, secret="s" * 32, audit_retention_days=30
        )
        async with assemble(settings) as app:
            old = await write_old(app.gate.store, 100)
            server.stop()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(keep_audit, app, 0.5)
                await until(lambda: _said(caplog, "audit_prune_failed"))
                server.start()
                await until(lambda: _said(caplog, "audit_pruned"))
                tasks.cancel_scope.cancel()
            assert old not in [r["id"] for r in await everything_in(app.gate.store)]
    finally:
        server.remove()
    (failed, *_) = [
        r for r in caplog.records if getattr(r, "fields", {}).get("event") == "audit_prune_failed"
    ]
    assert failed.levelname == "WARNING" and "PostgreSQL" in failed.fields["reason"]


async def _said(caplog: pytest.LogCaptureFixture, event: str) -> bool:
    return any(getattr(r, "fields", {}).get("event") == event for r in caplog.records)
