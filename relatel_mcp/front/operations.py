"""What an operator's tools ask of one replica over HTTP: `/readyz`, `/metrics`, and the 503 a
load balancer asks for from a replica that is not ready (docs/operations.md).

`Operations` answers these before any credential is looked at (it sits outside the MCP bearer
check, so neither path needs, or is refused for lacking, an MCP credential):

- `GET /readyz` (public, like /healthz): 200 `{"status": "ready"}` when the state store answers a
  `SELECT 1` and Relatel answers a GET of its API (any status, 401 included: no token is sent);
  503 `{"status": "not_ready", "reasons": [...]}` otherwise. The answer is kept for `TTL` seconds
  and only one check runs at a time, so probes cannot flood Relatel or the database.
- `GET /metrics`: 404 while RELATEL_MCP_METRICS_TOKEN is unset; 401 unless the request's bearer
  is that token (compared in constant time); else the App's registry in Prometheus's text format.
- A request to `/mcp` or `/sse` that carries `X-Relatel-MCP-If-Not-Ready: 503` (a proxy saying it
  will pass a 503 on to another replica: deploy/relatel-mcp.locations.conf) gets 503 before
  anything else runs while this replica knows it is not ready; without that header, or once the
  proxy has no other replica left to try, the request is served as always (reads need no store;
  gated calls fail closed). `/messages/` is never refused: a legacy SSE session's messages can
  only be served by the replica that holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.abc
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.metrics import Metrics
from ..store import Store, StoreUnavailable
from ..upstream.client import RelatelClient

TTL = 5.0  # seconds a readiness answer is kept
TIMEOUT = 2.0  # seconds each dependency has to answer
IF_NOT_READY = b"x-relatel-mcp-if-not-ready"
REFUSABLE = frozenset({"/mcp", "/sse"})  # what a proxy can open on another replica instead
RETRY_AFTER = "1"


@dataclass(frozen=True)
class Report:
    """One readiness check: why this replica is not ready (nothing: it is)."""

    reasons: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.reasons

    def body(self) -> dict[str, object]:
        if self.ready:
            return {"status": "ready"}
        return {"status": "not_ready", "reasons": list(self.reasons)}


class Readiness:
    """Does the store answer, and can Relatel be reached? Checked at most once per `ttl` seconds,
    one check at a time (others wait for it, or take the last answer: `current`)."""

    def __init__(
        self,
        store: Store,
        client: RelatelClient,
        metrics: Metrics,
        *,
        ttl: float = TTL,
        timeout: float = TIMEOUT,
    ) -> None:
        self.store, self.client, self.metrics = store, client, metrics
        self.ttl, self.timeout = ttl, timeout
        self._report: Report | None = None
        self._checked = 0.0
        self._lock = anyio.Lock()
        self._tasks: anyio.abc.TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While the server runs: a stale answer is checked again in the background."""
        async with anyio.create_task_group() as self._tasks:
            try:
                yield
            finally:
                self._tasks.cancel_scope.cancel()
                self._tasks = None

    async def check(self) -> Report:
        """The answer, checked anew when older than `ttl` (waiting for a check under way)."""
        if self._fresh():
            assert self._report is not None
            return self._report
        async with self._lock:
            if not self._fresh():  # nobody checked while this waited
                self._report = await self._probe()
                self._checked = time.monotonic()
            assert self._report is not None
            return self._report

    async def current(self) -> Report:
        """The last answer without waiting for it to be checked again (that is started, where the
        server runs, in the background); the first one is waited for."""
        if self._report is None:
            return await self.check()
        if not self._fresh() and not self._lock.locked():
            if self._tasks is None:
                return await self.check()
            self._tasks.start_soon(self.check)
        return self._report

    def _fresh(self) -> bool:
        return self._report is not None and time.monotonic() - self._checked < self.ttl

    async def _probe(self) -> Report:
        store: str | None = None
        relatel: str | None = None

        async def ping_store() -> None:
            nonlocal store
            try:
                await self.store.ping(self.timeout)
            except StoreUnavailable as exc:  # its message never holds the store's URL
                store = str(exc)

        async def reach_relatel() -> None:
            nonlocal relatel
            relatel = await self.client.unreachable(self.timeout)

        async with anyio.create_task_group() as both:
            both.start_soon(ping_store)
            both.start_soon(reach_relatel)
        self.metrics.readiness(store is None, relatel is None)
        reasons = [f"store unreachable: {store}"] if store is not None else []
        reasons += [f"Relatel unreachable: {relatel}"] if relatel is not None else []
        return Report(tuple(reasons))


class Operations:
    """ASGI middleware: /readyz, /metrics and the not-ready refusal (see the module's docstring).
    It also keeps `readiness` checking in the background for as long as the app runs."""

    def __init__(self, app: ASGIApp, readiness: Readiness, metrics: Metrics, token: str | None) -> None:
        self.app = app
        self.readiness = readiness
        self.metrics = metrics
        self.token = hashlib.sha256(token.encode()).digest() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self.readiness.running():
                return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, reading = scope["path"], scope["method"] == "GET"
        if path == "/readyz" and reading:
            report = await self.readiness.check()
            return await _json(send, 200 if report.ready else 503, report.body())
        if path == "/metrics" and reading:
            return await self._metrics(scope, send)
        if path in REFUSABLE and _header(scope, IF_NOT_READY) == b"503":
            report = await self.readiness.current()
            if not report.ready:
                self.metrics.not_ready_refusal(path)
                body = {
                    "error": "not_ready",
                    "message": "This replica is not ready; try another.",
                    **report.body(),
                }
                return await _json(send, 503, body, [(b"retry-after", RETRY_AFTER.encode())])
        await self.app(scope, receive, send)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        if self.token is None:  # as if there were no such path
            return await _plain(send, 404, b"Not Found")
        given = _bearer(_header(scope, b"authorization"))
        if given is None or not hmac.compare_digest(hashlib.sha256(given).digest(), self.token):
            return await _json(
                send,
                401,
                {"error": "unauthorized", "message": "GET /metrics needs the metrics bearer token."},
                [(b"www-authenticate", b'Bearer realm="relatel-mcp metrics"')],
            )
        await self.readiness.check()  # the readiness gauges, as of now (kept for TTL seconds)
        exposition, content_type = self.metrics.render((_header(scope, b"accept") or b"").decode("latin-1"))
        await _send(send, 200, exposition, content_type.encode(), [(b"cache-control", b"no-store")])


def _header(scope: Scope, name: bytes) -> bytes | None:
    values = [value for key, value in scope["headers"] if key.lower() == name]
    return values[0] if len(values) == 1 else None


def _bearer(value: bytes | None) -> bytes | None:
    scheme, _, credential = (value or b"").partition(b" ")
    return credential.strip() if scheme.lower() == b"bearer" and credential.strip() else None


Headers = list[tuple[bytes, bytes]]


async def _json(send: Send, status: int, body: object, headers: Headers | None = None) -> None:
    await _send(send, status, json.dumps(body).encode(), b"application/json", headers)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await _send(send, status, body, b"text/plain; charset=utf-8")


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Headers | None = None
) -> None:
    start = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
