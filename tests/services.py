"""Real PostgreSQL and nginx for the tests, from Debian's packages (`.ci/run` installs them):
each started on loopback in a scratch directory and stopped by its pid.

PostgreSQL refuses to run as root, so when the tests run as root it runs as the `postgres` user
the Debian package creates. Where a binary is missing these fixtures skip, unless
RELATEL_MCP_REQUIRE_SERVICES=1 (as in CI) makes that a failure: `missing`, through which every
skip in the suite goes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

# Debian's layout: /usr/lib/postgresql/<major>/bin; the newest installed.
PG_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/nonexistent"), key=lambda p: int(p.parent.name)
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(
    what: str, why: str = "is not installed (`.ci/run` installs it from Debian's packages)"
) -> NoReturn:
    """Skip the test for want of `what`, unless RELATEL_MCP_REQUIRE_SERVICES=1 (as in CI) makes that
    a failure. Every skip in tests/ comes through here (tests/test_skips.py), so that CI never
    passes with a part of the suite silently left out."""
    if os.environ.get("RELATEL_MCP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required here (RELATEL_MCP_REQUIRE_SERVICES=1), but {what} {why}")
    pytest.skip(f"{what} {why}")


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that is not us to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class Postgres:
    """One PostgreSQL server on 127.0.0.1, in a scratch directory."""

    def __init__(self) -> None:
        if not (PG_BIN / "postgres").exists():
            missing("PostgreSQL (Debian package postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="relatel-mcp-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                          "--no-sync", "-E", "UTF8", "--locale=C"]),
            check=True, capture_output=True,
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> Postgres:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                          "-o", options, "-w", "start"]),
            check=True, capture_output=True,
        )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Stopped by its pid (SIGINT: PostgreSQL's fast shutdown)."""
        if (self.data / "postmaster.pid").exists():
            stop_pid(self.pid, signal.SIGINT)

    def create_database(self, name: str, template: str = "template1") -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx:
    """nginx on 127.0.0.1 in front of `upstreams`, with the deployment's own locations file."""

    def __init__(self, upstreams: list[str], locations: Path) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            missing("nginx (Debian package nginx-light)")
        self.dir = Path(tempfile.mkdtemp(prefix="relatel-mcp-nginx-"))
        self.port = free_port()
        servers = "".join(f"        server {u};\n" for u in upstreams)
        (self.dir / "nginx.conf").write_text(
            f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log warn;\n"
            "worker_processes 1;\nevents {\n    worker_connections 4096;\n}\nhttp {\n"
            f"    access_log off;\n    client_body_temp_path {self.dir}/body;\n"
            f"    proxy_temp_path {self.dir}/proxy;\n"
            "    limit_conn_zone $binary_remote_addr zone=per_client:10m;\n"
            f"    upstream relatel_mcp {{\n{servers}        keepalive 32;\n    }}\n"
            f"    upstream relatel_mcp_sse {{\n        hash $remote_addr consistent;\n{servers}    }}\n"
            f"    server {{\n        listen 127.0.0.1:{self.port};\n        include {locations};\n    }}\n}}\n"
        )
        subprocess.run([nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")], check=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        pid_file = self.dir / "nginx.pid"
        if pid_file.exists():
            stop_pid(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)
