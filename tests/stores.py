"""Which store the suite's servers use: SQLite in each test's state directory (the default), or,
with RELATEL_MCP_TEST_STORE=postgres, a fresh PostgreSQL database per state directory on a
server the session starts (tests/services.py). Two connects with the same state directory share
a database, as two servers sharing a state directory share state.db."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

from .services import Postgres

BACKEND = os.environ.get("RELATEL_MCP_TEST_STORE", "sqlite")


class TestStores:
    def __init__(self) -> None:
        self.postgres: Postgres | None = None
        self.databases: dict[Path, str] = {}
        self._names = itertools.count()

    def start_postgres(self) -> None:
        """One server for the session, and a migrated template to copy each database from."""
        import anyio

        from relatel_mcp.store.postgres import PostgresStore

        self.postgres = Postgres().start()
        template = self.postgres.create_database("relatel_template")

        async def migrate() -> None:
            store = await PostgresStore.connect(template)
            await store.close()

        anyio.run(migrate)

    def url_for(self, state_dir: Path) -> str | None:
        if self.postgres is None:
            return None
        if state_dir not in self.databases:
            name = f"test_{next(self._names)}"
            self.databases[state_dir] = self.postgres.create_database(name, template="relatel_template")
        return self.databases[state_dir]

    def audit_rows(self, state_dir: Path) -> list[tuple]:
        """Every raw row of the audit table a server with this state directory wrote."""
        url = self.databases.get(state_dir)
        if url is not None:
            import psycopg

            with psycopg.connect(url) as conn:
                return conn.execute("SELECT * FROM audit").fetchall()
        database = state_dir / "state.db"
        if not database.exists():
            return []
        with sqlite3.connect(database) as db:  # created at start-up, its tables at the first write
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone() is None:
                return []
            return db.execute("SELECT * FROM audit").fetchall()


STORES = TestStores()
