"""No Docker engine runs here, so this checks what it can of the Dockerfile: its install step and
its run command work in a fresh virtual environment, and its health check passes.

It copies what the Dockerfile COPYs into a fresh directory, runs its `pip install .` in a fresh
venv, starts its ENTRYPOINT + CMD (with --host 127.0.0.1 instead of 0.0.0.0, so that nothing
listens beyond loopback here) against a standalone sandbox, runs the HEALTHCHECK command, and
makes one MCP call. Every process it starts is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    for line in text.splitlines():
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.setdefault(keyword, []).append(rest.strip())
    return found


def main() -> int:
    docker = instructions()
    work = Path(tempfile.mkdtemp(prefix="relatel-mcp-docker-"))
    processes: list[subprocess.Popen] = []
    try:
        app = work / "app"
        app.mkdir()
        for copy in docker["COPY"]:
            *sources, target = copy.split()
            destination = app / target
            for source in sources:
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, destination)
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        bin_dir = venv / "bin"
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        install = next(run for run in docker["RUN"] if run.startswith("pip install"))
        pip_step = shlex.split(install.split("&&")[0])
        subprocess.run([str(bin_dir / "pip"), *pip_step[1:], "--quiet"], cwd=app, env=env, check=True)
        print(f"install step ok: {' '.join(pip_step)}")

        sandbox_port, port = free_port(), 8080 if port_free(8080) else free_port()
        processes.append(subprocess.Popen([str(bin_dir / "relatel-mcp"), "sandbox", "--port", str(sandbox_port)],
                                          env=env, stdout=subprocess.DEVNULL))  # fmt: skip
        entrypoint = json.loads(docker["ENTRYPOINT"][0])
        command = json.loads(docker["CMD"][-1])
        command = [
            ("127.0.0.1" if arg == "0.0.0.0" else str(port) if arg == "8080" else arg) for arg in command
        ]
        key = "docker-check-key-0123456789"
        run_env = {**env, "RELATEL_TOKEN": "sandbox-admin", "RELATEL_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
                   "RELATEL_MCP_API_KEYS": key, "RELATEL_MCP_STATE_DIR": str(work / "state")}  # fmt: skip
        processes.append(subprocess.Popen([str(bin_dir / entrypoint[0]), *command], env=run_env))
        health = json.loads(docker["HEALTHCHECK"][0].split("CMD", 1)[1].strip())
        health = [str(bin_dir / "python") if health[0] == "python" else health[0], *health[1:]]
        health[-1] = health[-1].replace("8080", str(port))
        wait(lambda: subprocess.run(health, capture_output=True).returncode == 0)
        print(f"run step ok: {' '.join([entrypoint[0], *command])}; health check passes")
        call = subprocess.run(
            [str(bin_dir / "python"), "-c", CALL, f"http://127.0.0.1:{port}/mcp", key],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        print(f"an MCP call over HTTP: {call.stdout.strip()}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        shutil.rmtree(work, ignore_errors=True)
    return 0


CALL = """
import sys, anyio, httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
async def main():
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {sys.argv[2]}"})
    async with Client(streamable_http_client(sys.argv[1], http_client=http)) as c:
        r = await c.call_tool("get_current_employee", {})
        print("get_current_employee ->", r.structured_content["employee"]["name"])
anyio.run(main)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
