"""RelatelClient: the one HTTP connection pool every tool call goes through.

The token travels with each request, never on the shared client, so one pool can serve several
tenants without one's token reaching another's request.

Retries only where repeating is harmless: requests the caller marks idempotent (reads, PUT,
PATCH, DELETE) are retried on connection errors, timeouts, unreadable bodies and 429/502/503/504,
with capped exponential backoff, full jitter, and `Retry-After` honoured. Everything else is sent
exactly once: a phone call is never placed twice because an answer got lost.
"""

from __future__ import annotations

import functools
import hashlib
import random
import ssl
import time
from dataclasses import dataclass, field
from functools import cached_property

import anyio
import httpx2

from .. import __version__
from ..core import traces
from ..core.errors import TOKEN_SOURCE, ToolError, from_transport, retry_after_seconds
from ..core.metrics import NO_METRICS, Metrics
from ..core.request import UpstreamRequest, parsed_json
from .ratelimit import RateLimiter

RETRY_STATUSES = frozenset({429, 502, 503, 504})
PROBE_PATH = "/api/v2/"  # what readiness asks, without a token: any answer means Relatel is there


@dataclass(frozen=True)
class Tenant:
    """Whose Relatel account a call acts on. The token goes upstream and nowhere else; `source`
    says where it came from (core/errors.py TOKEN_SOURCES), so that a 401 names what to fix."""

    token: str = field(repr=False)
    source: str | None = field(default=None, compare=False)

    @cached_property
    def id(self) -> str:
        """A stable pseudonym for budgets and the audit log: never the token itself."""
        return hashlib.sha256(b"relatel-mcp tenant:" + self.token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # in all, for idempotent requests
    base: float = 0.25  # seconds; doubled each attempt, with full jitter
    cap: float = 4.0
    max_retry_after: float = 30.0  # a longer Retry-After is reported, not waited for

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


class RelatelClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics  # each attempt: its latency and status class; each retry
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(per_second=10, burst=20)
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=httpx2.Timeout(read_timeout, connect=connect_timeout),
            headers={"Accept": "application/json", "User-Agent": f"relatel-mcp/{__version__}"},
            follow_redirects=False,
            transport=transport,
            verify=_tls(),
        )

    async def send(
        self,
        request: UpstreamRequest,
        tenant: Tenant,
        *,
        idempotent: bool = False,
        expect_json: bool = False,
        max_bytes: int | None = None,
    ) -> httpx2.Response:
        """The response to `request`; transport failures become ToolErrors, statuses are the caller's.

        Only `idempotent` requests are ever repeated; `expect_json` lets a garbled answer to one
        count as a failure worth repeating. A body longer than `max_bytes` is refused while it
        arrives (a recording), never held in memory whole nor handed on cut.
        """
        attempts = self.retry.attempts if idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                with traces.upstream(self.base_url, request.method, request.path, attempt) as span:
                    response = await self._send_once(request, tenant, max_bytes)
                    traces.responded(span, response.status_code)
            except ToolError as error:
                if last or error.code == "rate_limited":
                    raise
                self.metrics.upstream_retry(request.method)
                await anyio.sleep(self.retry.backoff(attempt))
                continue
            wait = self._retry_wait(response, attempt, expect_json)
            if last or wait is None:
                return response
            self.metrics.upstream_retry(request.method)
            await anyio.sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _send_once(
        self, request: UpstreamRequest, tenant: Tenant, max_bytes: int | None
    ) -> httpx2.Response:
        await self.limiter.acquire(tenant.id)
        built = self._http.build_request(
            request.method,
            request.path,
            params=list(request.params) or None,
            json=request.json,
            headers={"Authorization": f"Bearer {tenant.token}"},
            extensions={TOKEN_SOURCE: tenant.source},  # read by from_response, never sent
        )
        started = time.monotonic()
        try:
            if max_bytes is None:
                response = await self._http.send(built)
                self.metrics.upstream(request.method, response.status_code, time.monotonic() - started)
                return response
            response = await self._http.send(built, stream=True)
            try:
                body = await _read_at_most(response, max_bytes)
            finally:
                await response.aclose()
        except httpx2.TransportError as exc:
            self.metrics.upstream(request.method, None, time.monotonic() - started)
            raise from_transport(exc) from None
        self.metrics.upstream(request.method, response.status_code, time.monotonic() - started)
        return httpx2.Response(response.status_code, headers=response.headers, content=body, request=built)

    def _retry_wait(self, response: httpx2.Response, attempt: int, expect_json: bool) -> float | None:
        """How long to wait before repeating this idempotent request, or None to keep the answer."""
        if response.status_code in RETRY_STATUSES:
            retry_after = retry_after_seconds(response)
            if retry_after is None:
                return self.retry.backoff(attempt)
            return retry_after if retry_after <= self.retry.max_retry_after else None
        if expect_json and response.is_success and not _is_json(response):
            return self.retry.backoff(attempt)
        return None

    async def unreachable(self, timeout: float) -> str | None:
        """Why Relatel cannot be reached now, or None: a GET of its API without a token, which any
        answer (a 401, a 404) passes within `timeout` seconds (readiness; no retry, no metrics)."""
        try:
            await self._http.get(PROBE_PATH, timeout=timeout)
        except httpx2.TimeoutException:
            return f"no answer within {timeout:g} s"
        except httpx2.TransportError as exc:
            failed = "could not connect" if isinstance(exc, httpx2.ConnectError) else "the connection failed"
            return f"{failed} ({type(exc).__name__})"
        return None

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read_at_most(response: httpx2.Response, max_bytes: int) -> bytes:
    """The whole body, or ToolError too_large as soon as it is known to be longer than `max_bytes`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_large(None, max_bytes)
    return bytes(body)


def too_large(size: int | None, max_bytes: int) -> ToolError:
    told = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return ToolError(
        "too_large",
        f"Relatel's answer is {told}; this server reads at most {max_bytes:,}. Nothing was returned.",
    )


def _is_json(response: httpx2.Response) -> bool:
    try:
        parsed_json(response)
    except ValueError:
        return False
    return True


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client in the process (each App, each Toolkit): httpx would build
    one per client, loading the CA bundle each time (some 25 ms of CPU)."""
    return httpx2.create_ssl_context()
