"""Shared fixtures: one sandbox server for the whole session, reset before every test that uses it;
the token scan over everything the run produced (failing the run where it finds one); scratch
state directories, never the developer's, removed when the run ends."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import hypothesis  # noqa: F401  (see below)
import mcp.client.client
import pytest
from mcp import Client

from relatel_mcp.functions.toolkit import Toolkit
from relatel_mcp.sandbox import SandboxServer, SandboxState

from .hygiene import HYGIENE, Hygiene, ScanningHandler, scan_result
from .scratch import SCRATCH
from .stores import BACKEND, STORES
from .support import stdio

# Hypothesis is imported at the start: its pytest plugin otherwise imports it as the run ends where
# no test did (as in a mutant's selection), and pytest's assertion rewriting then parses it late in
# a process full of threads. CPython 3.11.7's ast.parse can fail there ("AST constructor recursion
# depth mismatch", python/cpython#106905, fixed in later releases); it did once, ending a mutation
# run on a busy machine.

REAL_STATE = Path.home() / ".local" / "state" / "relatel-mcp"  # the developer's: no test may write it


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def test_store() -> Iterator[str]:
    """With RELATEL_MCP_TEST_STORE=postgres, every test server keeps its state in PostgreSQL."""
    if BACKEND == "postgres":
        STORES.start_postgres()
    try:
        yield BACKEND
    finally:
        if STORES.postgres is not None:
            STORES.postgres.remove()


@pytest.fixture(scope="session", autouse=True)
def hygiene(test_store: str) -> Iterator[Hygiene]:
    """Scan every MCP and Toolkit result, every log line (at DEBUG) and every stdio server's stderr
    of the session for credentials; at the end, every audit record too. Any found fails the run
    (in every pass: tests/test_zz_token_hygiene.py, which also checks that much was scanned, is
    not in each). The scratch directories go after that scan, which reads them (and PostgreSQL,
    where the audits may be, after this: `test_store`)."""
    found = HYGIENE
    handler = ScanningHandler(found)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    original_call, original_read = Client.call_tool, Client.read_resource
    original_toolkit_call = Toolkit.call
    original_stdio = mcp.client.client.stdio_client

    async def call_tool(self: Client, *args: Any, **kwargs: Any) -> Any:
        return scan_result(found, await original_call(self, *args, **kwargs))

    async def read_resource(self: Client, *args: Any, **kwargs: Any) -> Any:
        return scan_result(found, await original_read(self, *args, **kwargs))

    async def toolkit_call(self: Toolkit, *args: Any, **kwargs: Any) -> Any:
        return scan_result(found, await original_toolkit_call(self, *args, **kwargs))

    Client.call_tool, Client.read_resource = call_tool, read_resource  # type: ignore[method-assign]
    Toolkit.call = toolkit_call  # type: ignore[method-assign]
    mcp.client.client.stdio_client = stdio  # Client(StdioServerParameters(...)) starts servers so
    try:
        yield found
        found.scan_audit()
        if found.hits:
            pytest.fail("credentials found by the token scan:\n" + "\n".join(found.hits), pytrace=False)
    finally:
        Client.call_tool, Client.read_resource = original_call, original_read  # type: ignore[method-assign]
        Toolkit.call = original_toolkit_call  # type: ignore[method-assign]
        mcp.client.client.stdio_client = original_stdio
        root.removeHandler(handler)
        root.setLevel(previous)
        SCRATCH.remove()


@pytest.fixture(scope="session", autouse=True)
def real_state_untouched() -> Iterator[None]:
    """In-process servers that choose their own state directory find it under a scratch
    XDG_STATE_HOME (subprocesses get one each from support.env), and the run fails if the
    developer's ~/.local/state/relatel-mcp changed all the same (as it would with a run of an
    older checkout beside this one)."""
    before = _files(REAL_STATE)
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(SCRATCH.new("xdg-state-"))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["XDG_STATE_HOME"]
        else:
            os.environ["XDG_STATE_HOME"] = previous
    assert _files(REAL_STATE) == before, f"a test wrote to the developer's state directory, {REAL_STATE}"


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    """Each file under `directory`: (size, modification time in ns)."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# The sandbox's clients live for the whole run. uvicorn closes a connection idle for 5 s, the
# client's default for reusing one: a request sent as the server closes it meets a reset (seen on a
# busy machine). Reused only within 1 s, a connection is never one the server is closing.
SHORT_KEEPALIVE = httpx2.Limits(keepalive_expiry=1)


@dataclass
class SandboxHandle:
    """A running sandbox plus its control endpoints, used over real HTTP like any client would."""

    url: str
    state: SandboxState
    control: httpx2.Client = field(repr=False)
    _clients: dict[str | None, httpx2.Client] = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        self.control.post("/_sandbox/reset").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return self.control.get("/_sandbox/requests").raise_for_status().json()["requests"]

    def clear_requests(self) -> None:
        self.control.delete("/_sandbox/requests").raise_for_status()

    def outbox(self) -> list[dict[str, Any]]:
        return self.control.get("/_sandbox/outbox").raise_for_status().json()["outbox"]

    def fault(self, **spec: Any) -> dict[str, Any]:
        return self.control.post("/_sandbox/faults", json=spec).raise_for_status().json()["fault"]

    def held(self) -> int:
        """How many requests a `hold` fault holds now: performed, their answers not yet sent."""
        return sum(bool((r["fault"] or {}).get("hold")) and r["status"] is None for r in self.requests())

    def release(self) -> None:
        """Let every held request's answer go."""
        self.control.post("/_sandbox/faults/release").raise_for_status()

    def client(self, token: str | None = "sandbox-admin", **kwargs: Any) -> httpx2.Client:
        """A new API client authenticated with `token` (close it, e.g. with `with`)."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.Client(base_url=self.url, headers=headers, timeout=10, limits=SHORT_KEEPALIVE, **kwargs)

    def api(self, token: str | None = "sandbox-admin") -> httpx2.Client:
        """A shared API client for `token`, kept for the session (creating one is slow): don't close it."""
        if token not in self._clients:
            self._clients[token] = self.client(token)
        return self._clients[token]

    def close(self) -> None:
        for api in self._clients.values():
            api.close()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    server = SandboxServer(host="127.0.0.1", port=0).start_thread()
    with httpx2.Client(base_url=server.url, timeout=10, limits=SHORT_KEEPALIVE) as control:
        handle = SandboxHandle(url=server.url, state=server.state, control=control)
        yield handle
        handle.close()
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_sandbox(request: pytest.FixtureRequest) -> None:
    """Restore the seed (and clear outbox, log, faults) before each test that uses the sandbox."""
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()
