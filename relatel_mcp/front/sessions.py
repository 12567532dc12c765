"""How long an HTTP session lasts once its client goes quiet.

Streamable HTTP: the SDK's session manager ends a session that has had no request in flight (no
POST being answered, no GET stream open) for `session_idle_timeout` seconds; its id then answers
404 and the client initializes a new session. Legacy SSE has no such rule in the SDK: a stream
stays open as long as the client keeps the connection, sending nothing. `IdleWatch` gives an SSE
session the same rule, from the messages the client POSTs: it ends `seconds` after the last one,
unless a request of the client's is still being answered (a tool call waiting for a human), in
which case the countdown starts again from the answer. The stream is then closed, and a POST for
the session gets the SDK's 404.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import anyio
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)


class Receiving(Protocol[T_co]):
    """What a transport's read stream offers (the SDK's own protocol for it is private)."""

    async def receive(self) -> T_co: ...
    async def aclose(self) -> None: ...


class Sending(Protocol[T_contra]):
    """What a transport's write stream offers."""

    async def send(self, item: T_contra, /) -> None: ...
    async def aclose(self) -> None: ...


class IdleWatch:
    """One SSE session's idle deadline: run the session inside `scope`, over `streams(...)`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)
        self.unanswered: set[RequestId] = set()  # the client's requests being answered

    def streams(
        self, read: Receiving[SessionMessage | Exception], write: Sending[SessionMessage]
    ) -> tuple[_Read[SessionMessage | Exception], _Write[SessionMessage]]:
        """The session's streams, watched: what the client sends, and the server's answers."""
        return _Read(read, self._received), _Write(write, self._sent)

    def _received(self, item: SessionMessage | Exception) -> None:
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCRequest):
            self.unanswered.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = (message.params or {}).get("requestId")
            if isinstance(cancelled, int | str):  # the SDK will not answer it
                self.unanswered.discard(cancelled)
        self._restart()

    def _sent(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in self.unanswered:
            self.unanswered.discard(message.id)
            self._restart()

    def _restart(self) -> None:
        self.scope.deadline = math.inf if self.unanswered else anyio.current_time() + self.seconds


class _Read(Generic[T]):
    """A read stream that reports each item it yields (and passes on its sender's context)."""

    def __init__(self, inner: Receiving[T], seen: Callable[[T], None]) -> None:
        self.inner, self.seen = inner, seen

    @property
    def last_context(self) -> Any:  # the SDK runs each message's handler in its sender's context
        return getattr(self.inner, "last_context", None)

    async def receive(self) -> T:
        item = await self.inner.receive()
        self.seen(item)
        return item

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __aiter__(self) -> _Read[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _Read[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _Write(Generic[T]):
    """A write stream that reports each item it sends."""

    def __init__(self, inner: Sending[T], seen: Callable[[T], None]) -> None:
        self.inner, self.seen = inner, seen

    async def send(self, item: T, /) -> None:
        await self.inner.send(item)
        self.seen(item)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> _Write[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
