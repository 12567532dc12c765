"""No Docker engine runs here, so this checks what it can of the Dockerfile: its install step and
its run command work in a fresh virtual environment, as the image's user, and its health check
passes.

It copies what the Dockerfile COPYs into a fresh directory, runs its `pip install .` in a fresh
venv, and makes the image's user's home and state directory as the image would: the user's home
(`useradd --create-home`), then the RUN steps that name the VOLUME's path, as the user they run as
(after `USER`, the image's user). Docker gives a new named volume the owner and mode of the
directory the image has at that path, or root's if the image has none. It then starts ENTRYPOINT +
CMD as the image's user (uid from `useradd --uid`, through `setpriv`; with --host 127.0.0.1
instead of 0.0.0.0, so that nothing listens beyond loopback here) against a standalone sandbox,
runs the HEALTHCHECK command, and makes one MCP call. And it starts the same command with a
root-owned state directory, as a volume created by an image without that step gives one, and
expects the server's one-line refusal and exit 2. Every process it starts is stopped by its pid.

The runs as another user need root (CI's case); elsewhere they are skipped, and a failure where
RELATEL_MCP_REQUIRE_SERVICES=1 (as .ci/run sets).
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ordered_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword, rest.strip()))
    return found


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for keyword, rest in ordered_instructions():
        found.setdefault(keyword, []).append(rest)
    return found


@dataclass
class ImageUser:
    name: str
    uid: int
    home: Path  # in the scratch directory, standing for /home/<name>

    def command(self, *words: str) -> list[str]:
        """`words` run as this user (no supplementary groups), as Docker's USER does."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", *words]


def image_user(work: Path) -> ImageUser:
    """The USER, made as its `useradd --create-home --uid N` makes it: a home of its own."""
    name = instructions()["USER"][-1]
    added = next(run for run in instructions()["RUN"] if "useradd" in run)
    uid = int(re.search(r"--uid[ =](\d+)", added).group(1))  # type: ignore[union-attr]
    assert re.search(rf"useradd\b.*\b{name}\b", added) and "--create-home" in added, added
    home = work / "home" / name
    home.mkdir(parents=True)
    (work / "home").chmod(0o755)
    os.chown(home, uid, uid)
    return ImageUser(name, uid, home)


def make_state_directory(user: ImageUser) -> tuple[Path, str]:
    """The VOLUME's directory as the image leaves it (what a new named volume copies), and how."""
    volume = instructions()["VOLUME"][0]
    image_home = f"/home/{user.name}"
    assert volume.startswith(image_home + "/"), f"VOLUME {volume} outside {image_home}: map it here"
    state = user.home / volume.removeprefix(image_home + "/")
    current = "root"
    steps = []
    for keyword, rest in ordered_instructions():
        if keyword == "USER":
            current = rest
        elif keyword == "RUN" and volume in rest:
            command = ["sh", "-c", rest.replace(image_home, str(user.home))]
            subprocess.run(user.command(*command) if current == user.name else command, check=True)
            steps.append(f"RUN {rest} (as {current})")
    if not state.exists():  # Docker makes the mount point: root's
        state.mkdir(mode=0o755)
        steps.append("none: Docker makes it, root's")
    info = state.stat()
    owner = user.name if info.st_uid == user.uid else "root" if info.st_uid == 0 else str(info.st_uid)
    return state, f"{'; '.join(steps)} -> {owner}'s, mode {info.st_mode & 0o777:o}"


def main() -> int:
    docker = instructions()
    work = Path(tempfile.mkdtemp(prefix="relatel-mcp-docker-"))
    work.chmod(0o755)  # the image's user reads the venv
    as_root = hasattr(os, "getuid") and os.getuid() == 0 and shutil.which("setpriv") is not None
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
        server = [str(bin_dir / entrypoint[0]), *command]
        if as_root:
            user = image_user(work)
            refused = work / "root-volume"
            refused.mkdir(mode=0o755)  # a volume made by an image without the directory: root's
            done = subprocess.run(
                user.command(*server), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                env={**run_env, "HOME": str(user.home), "RELATEL_MCP_STATE_DIR": str(refused)},
            )  # fmt: skip
            said = done.stderr.strip()
            expected = (
                f"relatel-mcp: the state directory {refused} cannot be used by this user (uid {user.uid})"
            )
            if done.returncode != 2 or len(said.splitlines()) != 1 or not said.startswith(expected):
                print(
                    f"a root-owned state directory: expected one line and exit 2, got exit {done.returncode}:"
                )
                print("  " + "\n  ".join(said.splitlines()[-20:]))
                return 1
            print(f"a root-owned state directory, as {user.name} (uid {user.uid}): exit 2, {said}")
            state, how = make_state_directory(user)
            print(f"the state directory as the image makes it: {how}")
            run_env |= {"HOME": str(user.home), "RELATEL_MCP_STATE_DIR": str(state)}
            server = user.command(*server)
        elif os.environ.get("RELATEL_MCP_REQUIRE_SERVICES") == "1":
            print("the runs as the image's user need root and setpriv (util-linux)")
            return 1
        else:
            print("skipped the runs as the image's user (they need root and setpriv): running as this user")
        running = subprocess.Popen(server, env=run_env)
        processes.append(running)
        health = json.loads(docker["HEALTHCHECK"][0].split("CMD", 1)[1].strip())
        health = [str(bin_dir / "python") if health[0] == "python" else health[0], *health[1:]]
        health[-1] = health[-1].replace("8080", str(port))

        def healthy() -> bool:
            if running.poll() is not None:  # a container that exits: Docker would restart it, and again
                raise SystemExit(f"run step FAILED: the server exited ({running.returncode})")
            return subprocess.run(health, capture_output=True).returncode == 0

        wait(healthy)
        who = f"as {user.name}" if as_root else "as this user"
        print(f"run step ok: {' '.join([entrypoint[0], *command])} {who}; health check passes")
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
