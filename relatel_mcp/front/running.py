"""How a server runs until it is asked to stop: by the client closing stdin, by SIGINT (Ctrl-C)
or SIGTERM. MCP clients stop a stdio server by closing stdin, then SIGTERM, then SIGKILL;
terminals send SIGINT and supervisors SIGTERM. Each ends the server at once, in order (the
sandbox's throwaway directory removed too) and quietly, with 0, or 128 + the signal's number."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

if TYPE_CHECKING:
    from ..web.serving import UvicornServer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 0.3  # HTTP: how long requests in flight get to finish once a stop is asked for


class Stop:
    """SIGINT (Ctrl-C) and SIGTERM stop the server the way a client closing stdin does: the task
    group serving is left, so that everything closes in order (the sandbox's throwaway directory
    too), without a traceback. MCP clients stop a stdio server by closing stdin, then SIGTERM,
    then SIGKILL; supervisors and uvicorn's users send SIGTERM or SIGINT."""

    def __init__(self, tasks: anyio.abc.TaskGroup) -> None:
        self.tasks = tasks
        self.signal: int | None = None
        self.gently: Callable[[], None] | None = None  # HTTP: let uvicorn finish what is in flight

    async def watch(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                if self.signal is None and self.gently is not None:
                    self.signal = signum
                    self.gently()  # a second signal does not wait
                    continue
                self.signal = self.signal or signum
                self.tasks.cancel_scope.cancel()

    @property
    def status(self) -> int:
        """The exit status: 0, or 128 + the signal's number (130, 143) as a shell reports a
        process a signal stopped, so that a script or supervisor can tell the two apart."""
        return 128 + self.signal if self.signal else 0


async def stoppable(serve: Callable[[Stop], Awaitable[None]]) -> int:
    """Run `serve` until it ends or a signal stops it; the exit status."""
    async with anyio.create_task_group() as tasks:
        stop = Stop(tasks)
        await tasks.start(stop.watch)  # before start-up: a signal during it stops it as well
        await serve(stop)
        tasks.cancel_scope.cancel()
    return stop.status


def stop_gently(server: UvicornServer) -> None:
    """uvicorn's own shutdown: it stops accepting, lets requests in flight finish for
    GRACE_SECONDS, then cancels what is left (an open SSE stream never finishes) and runs the
    lifespan's end. That cancellation is ours, so uvicorn's error lines about it are left out."""
    logging.getLogger("uvicorn.error").addFilter(_not_our_cancellation)
    server.stop()


def _not_our_cancellation(record: logging.LogRecord) -> bool:
    cancelled = record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
    return not cancelled and "timeout graceful shutdown exceeded" not in record.getMessage()


class StdinLines:
    """stdin's lines for the SDK's stdio transport, read by a daemon thread of our own.

    The SDK reads stdin in an anyio worker thread, which a cancellation cannot abandon and the
    interpreter waits for at exit: Ctrl-C and SIGTERM did nothing until the next line or EOF. A
    daemon thread blocked in os.read holds no lock of Python's and is waited for by nobody."""

    def __init__(self, fd: int = 0) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[str](0)
        self._fd = fd

    async def __aenter__(self) -> StdinLines:
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._read, args=(token,), name="relatel-mcp stdin", daemon=True).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._receive.close()  # the thread's next line finds nobody, and it ends

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _read(self, token: anyio.lowlevel.EventLoopToken) -> None:
        pending = bytearray()
        try:
            while chunk := os.read(self._fd, 65536):
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    pending += chunk[start : end + 1]
                    anyio.from_thread.run(self._send.send, pending.decode("utf-8", "replace"), token=token)
                    pending, start = bytearray(), end + 1
                pending += chunk[start:]
            if pending:
                anyio.from_thread.run(self._send.send, pending.decode("utf-8", "replace"), token=token)
        except Exception:  # stdin broke, or the server is stopping: either way, no more lines
            pass
        with contextlib.suppress(Exception):  # EOF: the client ended the session
            anyio.from_thread.run_sync(self._send.close, token=token)
