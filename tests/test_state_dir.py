"""A state directory the server's user cannot write is one line and exit 2, in every command.

The case Docker makes: a named volume created by an image that did not make the directory
itself belongs to root, and the server runs as a user of its own. The real executable runs here as
such a user (uid 10001, the Dockerfile's, through `setpriv`), so these tests need root and
`setpriv` (util-linux): without them they skip, or fail where RELATEL_MCP_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from .services import missing
from .support import env

pytestmark = pytest.mark.anyio

EXE = str(Path(sys.executable).with_name("relatel-mcp"))
UID = 10001  # the Dockerfile's user
SETPRIV = shutil.which("setpriv")
AS_USER = [SETPRIV or "setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]


@pytest.fixture(autouse=True)
def _as_another_user() -> None:
    if not (hasattr(os, "getuid") and os.getuid() == 0 and SETPRIV):
        missing("root and setpriv (util-linux)", "are needed to run the server as another user")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory the other user can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="relatel-mcp-state-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def root_owned(path: Path, mode: int = 0o755) -> Path:
    """As Docker gives a new named volume at a path the image does not have: root's, 0755."""
    path.mkdir(exist_ok=True)
    path.chmod(mode)
    return path


def run_as_user(arguments: list[str], home: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_USER, EXE, *arguments],
        env=env(HOME=str(home), **variables),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def assert_one_line_exit_2(done: subprocess.CompletedProcess[str], directory: Path) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"relatel-mcp: the state directory {directory} cannot be used by this user")
    assert f"(uid {UID})" in line and "RELATEL_MCP_STATE_DIR or --state-dir" in line


COMMANDS = {
    "serve --sandbox (stdio)": ["serve", "--sandbox"],
    "serve --sandbox over HTTP": [
        "serve",
        "--sandbox",
        "--transport",
        "http",
        "--auth",
        "none",
        "--port",
        "0",
    ],
    "serve with a token (stdio)": ["serve"],
    "serve with a token over SSE": ["serve", "--transport", "sse", "--auth", "passthrough", "--port", "0"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=list(COMMANDS))
def test_a_root_owned_state_directory_is_one_line_and_exit_2(scratch, command):
    state = root_owned(scratch / "state")
    done = run_as_user(
        [*command, "--state-dir", str(state)], scratch,
        RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL="http://127.0.0.1:9",
    )  # fmt: skip
    assert_one_line_exit_2(done, state)
    assert f"chown -R {UID} {state}" in done.stderr
    assert list(state.iterdir()) == []


def test_the_state_directory_from_the_environment_and_one_it_cannot_create(scratch):
    state = root_owned(scratch / "volume", 0o700) / "state"  # its parent is root's, and closed
    done = run_as_user(
        ["serve"], scratch,
        RELATEL_TOKEN="sandbox-admin", RELATEL_BASE_URL="http://127.0.0.1:9", RELATEL_MCP_STATE_DIR=str(state),
    )  # fmt: skip
    assert_one_line_exit_2(done, state)
    assert f"mkdir -p {state} && chown {UID} {state}" in done.stderr


def test_the_audit_of_a_state_database_root_made(scratch):
    state = root_owned(scratch / "state")
    (state / "state.db").touch()  # someone ran the server as root once
    done = run_as_user(["audit", "--state-dir", str(state)], scratch)
    assert_one_line_exit_2(done, state)


def test_the_audit_of_a_state_directory_closed_to_the_user(scratch):
    state = root_owned(scratch / "state", 0o700)  # not even `state.db`'s existence can be seen
    (state / "state.db").touch()
    done = run_as_user(["audit", "--state-dir", str(state)], scratch)
    assert_one_line_exit_2(done, state)


def test_a_secret_key_another_user_made(scratch):
    """The directory and the database are the user's; the sealing key is not readable."""
    state = scratch / "state"
    state.mkdir(mode=0o700)
    (state / "secret.key").write_text("0" * 64)
    (state / "secret.key").chmod(0o600)
    os.chown(state, UID, UID)  # the directory is the user's; secret.key stays root's
    done = run_as_user(["serve", "--sandbox", "--state-dir", str(state)], scratch)
    assert_one_line_exit_2(done, state)


async def test_a_state_directory_the_user_owns_serves(scratch):
    """What the fixed image gives a new volume: the directory made by the user before VOLUME."""
    state = scratch / "state"
    state.mkdir(mode=0o700)
    os.chown(state, UID, UID)
    params = StdioServerParameters(
        command=AS_USER[0],
        args=[*AS_USER[1:], EXE, "serve", "--sandbox", "--state-dir", str(state)],
        env=env(HOME=str(scratch)),
    )
    async with Client(params) as session:
        me = await session.call_tool("get_current_employee", {})
    assert me.structured_content["employee"]["name"] == "Mette Hansen"
    assert {p.name for p in state.iterdir()} >= {"state.db", "secret.key"}
    assert {p.stat().st_uid for p in state.iterdir()} == {UID}
