"""A token bucket per tenant, so that the server itself never causes Relatel's 429s.

Each request upstream (tool calls, the gate's reads, credential checks) takes a token from its
tenant's bucket; an empty bucket makes the request wait its turn, up to `max_wait`. Buckets are
kept for the most recent tenants only, so memory stays bounded however many tenants come by.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import anyio

from ..core.errors import ToolError


class RateLimiter:
    def __init__(
        self, per_second: float, burst: int, *, max_wait: float = 10.0, tenants: int = 10_000
    ) -> None:
        self.per_second, self.burst, self.max_wait, self.tenants = per_second, burst, max_wait, tenants
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tenant -> (tokens, at)

    async def acquire(self, tenant: str) -> None:
        wait = self._take(tenant)
        if wait > self.max_wait:
            raise ToolError(
                "rate_limited",
                "Too many requests to Relatel from this account in a short time (this server's own limit).",
                retryable=True,
                hint=f"Retry after {wait:.0f} seconds.",
                retry_after=round(wait, 1),
            )
        if wait > 0:
            await anyio.sleep(wait)

    def take_now(self, key: str) -> float:
        """Take a token if there is one now (0.0); otherwise take nothing and say how long until
        there is one. Needs `max_wait=0`."""
        return self._take(key)

    def _take(self, tenant: str) -> float:
        """Take a token now (possibly borrowing against the future); how long to wait for it."""
        if self.per_second <= 0:
            return 0.0
        now = time.monotonic()
        tokens, at = self._buckets.pop(tenant, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        wait = max(0.0, (1 - tokens) / self.per_second)
        if wait <= self.max_wait:
            tokens -= 1
        self._buckets[tenant] = (tokens, now)
        while len(self._buckets) > self.tenants:
            self._buckets.popitem(last=False)
        return wait
