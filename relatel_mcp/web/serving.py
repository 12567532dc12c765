"""Running an ASGI app with uvicorn on a socket bound up front: blocking, in a thread, or as a task.

Binding first means `port=0` yields a free port and `.url` is known before serving starts
(connections made early wait in the listen backlog). Only the given host is bound. Used by the
MCP HTTP transports, the approval pages and the sandbox.

uvicorn waits forever for a request's headers and holds any number of connections, so a few
thousand half-sent requests (slowloris) exhaust the file handles. `guarded` closes a connection
that has not sent its headers within `header_timeout` or its body within `body_timeout`, and
refuses connections beyond `total`, or beyond `per_client` from one address (behind a reverse
proxy every client has the proxy's address: raise `per_client` there).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn

from ..core.errors import StartUpError
from ..internals import H11Protocol


@dataclass(frozen=True)
class ConnectionLimits:
    total: int = 1000  # open connections in all
    per_client: int = 100  # open connections from one address
    header_timeout: float = (
        10.0  # seconds from connecting (or a kept-alive request's first byte) to its headers
    )
    body_timeout: float = 30.0  # seconds from the headers to the end of the body


def guarded(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with connection caps and request read deadlines (what of uvicorn's
    internals this relies upon: internals.py)."""
    open_from: Counter[str] = Counter()

    class Guarded(H11Protocol):
        _from: str | None = None
        _deadline: asyncio.TimerHandle | None = None
        _phase: Any = None

        # A stream server's protocol is always handed an asyncio.Transport; H11Protocol narrows the
        # argument from BaseProtocol's BaseTransport just so (and ignores the same error).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            client = str((transport.get_extra_info("peername") or ("unknown",))[0])
            if open_from.total() >= limits.total or open_from[client] >= limits.per_client:
                transport.abort()
                return
            open_from[client] += 1
            self._from = client
            super().connection_made(transport)
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._from is None:  # refused in connection_made
                return
            open_from[self._from] -= 1
            if not open_from[self._from]:
                del open_from[self._from]
            self._arm(None, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def _watch(self) -> None:
            """Arm the deadline of the phase the request is in: headers, body, or none."""
            state = self.conn.their_state
            if state is h11.IDLE:
                self._arm(h11.IDLE, limits.header_timeout)
            elif state is h11.SEND_BODY:
                self._arm(h11.SEND_BODY, limits.body_timeout)
            else:
                self._arm(None, None)

        def _arm(self, phase: Any, seconds: float | None) -> None:
            if phase is not None and phase is self._phase:
                return  # keep the deadline this phase started with
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self._phase = phase
            if seconds is not None:
                self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    return Guarded


def raise_file_limit(wanted: int) -> None:
    """Lift the soft limit on open files towards the hard one, so `wanted` connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


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


class BindError(StartUpError, OSError):
    """The address cannot be listened on (in use, not this machine's, or not allowed)."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets (else ~40 ms a response)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fix = (
            "choose another --port (0 picks a free one), or stop what listens there"
            if exc.errno == errno.EADDRINUSE
            else "choose another --host or --port"
        )
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror}; {fix}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class UvicornServer:
    """One app on one socket. Use `start_thread()`/`stop()` (or `with`), `await serve()`, or `run()`."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ConnectionLimits | None = None,
        **config: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.started = threading.Event()
        self._config = {
            "log_level": "warning",
            "log_config": None,  # uvicorn's records go to the process's handlers (JSON lines: logs.py)
            "access_log": False,
            "timeout_graceful_shutdown": 5,
            "http": guarded(limits or ConnectionLimits()),
            **config,
        }
        self._socket = bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _uvicorn(self, handle_signals: bool) -> _Uvicorn:
        self._server = _Uvicorn(uvicorn.Config(self.app, **self._config), self.started, handle_signals)
        return self._server

    async def serve(self, *, handle_signals: bool = False) -> None:
        """Serve in the running event loop until `stop()` (or cancellation)."""
        server = self._uvicorn(handle_signals)
        try:
            await server.serve(sockets=[self._socket])
        finally:
            self.started.clear()
            self._socket.close()  # only once uvicorn is done with it

    async def wait_started(self, timeout: float = 10.0) -> None:
        """For callers that started `serve()` as a task: wait until connections are accepted."""
        async with asyncio.timeout(timeout):
            while not self.started.is_set():
                await asyncio.sleep(0.01)

    def start_thread(self, timeout: float = 10.0) -> UvicornServer:
        """Serve from a daemon thread with its own event loop; returns once it accepts connections."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.serve()), name=f"uvicorn-{self.port}", daemon=True
        )
        self._thread.start()
        if not self.started.wait(timeout):
            raise RuntimeError(f"server did not start within {timeout} s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and, for the thread variant, wait until it has."""
        if self._server is None:
            self._socket.close()  # never served
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C / SIGTERM; `ready(url)` is called once listening."""

        async def main() -> None:
            task = asyncio.create_task(self.serve(handle_signals=True))
            if ready is not None:
                await self.wait_started()
                ready(self.url)
            await task

        try:
            asyncio.run(main())
        finally:
            self._socket.close()

    def __enter__(self) -> UvicornServer:
        return self.start_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()
