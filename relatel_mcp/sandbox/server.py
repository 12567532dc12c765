"""Running the sandbox with uvicorn: blocking, in a background thread, or as a task in a running loop.

The server binds its own socket up front, so `port=0` yields a free port and `.url` is known before
serving starts (connections made early wait in the listen backlog). Only the given host is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from relatel_mcp.sandbox.app import create_app
from relatel_mcp.sandbox.data import SandboxState
from relatel_mcp.sandbox.faults import quiet_injected_drops

DEFAULT_PORT = 8765


class _Uvicorn(uvicorn.Server):
    """uvicorn that reports when it accepts connections and, when embedded, leaves signals alone."""

    def __init__(self, config: uvicorn.Config, started: threading.Event, handle_signals: bool) -> None:
        super().__init__(config)
        self._started_event = started
        self._handle_signals = handle_signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self._handle_signals:
            yield
            return
        with super().capture_signals():
            yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on such sockets (else ~40 ms per response)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SandboxServer:
    """One sandbox on one socket. Use `start_thread()`/`stop()` (or `with`), or `await serve()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state: SandboxState | None = None) -> None:
        self.host = host
        self.state = state or SandboxState()
        self.app = create_app(self.state)
        self.started = threading.Event()
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._serving = False
        self._stop_requested = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _uvicorn(self, handle_signals: bool) -> _Uvicorn:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=5,
        )
        quiet_injected_drops()
        self._server = _Uvicorn(config, self.started, handle_signals)
        return self._server

    async def serve(self, *, handle_signals: bool = False) -> None:
        """Serve in the running event loop until `stop()` (or cancellation)."""
        self._serving = True
        server = self._uvicorn(handle_signals)
        server.should_exit = self._stop_requested  # stop() may come before uvicorn exists
        try:
            await server.serve(sockets=[self._socket])
        finally:
            self.started.clear()
            self._socket.close()

    async def wait_started(self, timeout: float = 10.0) -> None:
        """For callers that started `serve()` as a task: wait until connections are accepted."""
        async with asyncio.timeout(timeout):
            while not self.started.is_set():
                await asyncio.sleep(0.01)

    def start_thread(self, timeout: float = 10.0) -> SandboxServer:
        """Serve from a daemon thread with its own event loop; returns once it accepts connections."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.serve()), name="relatel-sandbox", daemon=True
        )
        self._thread.start()
        if not self.started.wait(timeout):
            raise RuntimeError(f"sandbox did not start within {timeout} s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and, for the thread variant, wait until it has."""
        self._stop_requested = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if not self._serving:
            self._socket.close()  # never served; otherwise serve() closes it after shutdown

    def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C / SIGTERM; `ready(url)` is called once listening."""

        async def main() -> None:
            task = asyncio.create_task(self.serve(handle_signals=True))
            if ready is not None:
                await self.wait_started()
                ready(self.url)
            await task

        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
            asyncio.run(main())

    def __enter__(self) -> SandboxServer:
        return self.start_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sandbox(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, ready: Callable[[str], None] | None = None
) -> None:
    """Run a sandbox in the foreground (used by `relatel-mcp sandbox --port P`)."""
    SandboxServer(host, port).run(ready)
