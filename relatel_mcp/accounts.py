"""Who a token acts as: the Relatel account (company and employee) behind it.

Budgets, confirmations and the audit follow the person, not the token: a second token of the same
employee shares their budget and their audit. The account is asked of Relatel once per token
(`GET /api/v2/employee`) and cached, in memory and in the store (so that replicas share it); the
same answer tells whether a remote client's token is valid at all, so checking a credential and
finding its account cost one request together. The store is a cache here: when it cannot be
reached, tokens are checked with Relatel as if it were empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict

from .client import RelatelClient, Tenant, UpstreamRequest
from .errors import ToolError
from .store import Store, StoreUnavailable


class Unavailable(Exception):
    """Relatel could not say whose the token is right now (unreachable or failing)."""


def account_id(company_id: object, employee_id: object) -> str:
    """A stable pseudonym of one employee of one company: never a token, never a name."""
    key = f"relatel-mcp account:{company_id}:{employee_id}".encode()
    return hashlib.sha256(key).hexdigest()[:16]


def token_key(tenant: Tenant) -> str:
    """Where the audit keeps an attempt made before the token's account was known."""
    return f"token:{tenant.id}"


class Accounts:
    """token pseudonym -> account pseudonym, or None where Relatel refuses the token."""

    def __init__(
        self,
        client: RelatelClient,
        store: Store,
        *,
        ttl: float = 300.0,
        refused_ttl: float = 30.0,
        size: int = 10_000,
    ) -> None:
        self.client, self.store = client, store
        self.ttl, self.refused_ttl, self.size = ttl, refused_ttl, size
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()  # -> (account, expiry)

    def last_known(self, tenant: Tenant) -> str | None:
        """The account last seen here for this token, however long ago (it never changes)."""
        cached = self._cache.get(tenant.id)
        return cached[0] if cached else None

    async def cached(self, tenant: Tenant) -> tuple[str | None, float] | None:
        """The last answer for this token, from memory or the store: (account or None, expiry)."""
        cached = self._cache.get(tenant.id)
        if cached is None or cached[1] < time.time():
            with contextlib.suppress(StoreUnavailable):
                cached = await self.store.account_of(tenant.id) or cached
            if cached is not None:
                self._memo(tenant, cached)
        return cached

    async def unknown(self, tenant: Tenant) -> bool:
        """Would finding this token's account ask Relatel about a token never seen valid?"""
        cached = await self.cached(tenant)
        return cached is None or (cached[0] is None and cached[1] < time.time())

    async def of(self, tenant: Tenant) -> str | None:
        cached = await self.cached(tenant)
        if cached is None or cached[1] < time.time():
            account = await self._ask(tenant)
            cached = (account, time.time() + (self.ttl if account is not None else self.refused_ttl))
            self._memo(tenant, cached)
            with contextlib.suppress(StoreUnavailable):
                await self.store.remember_account(tenant.id, *cached)
        return cached[0]

    async def refused(self, tenant: Tenant) -> None:
        """Relatel just refused this token (401): remember that, here and for other replicas, so the
        next request with it is refused at the door (and an OAuth grant holding it ends)."""
        entry = (None, time.time() + self.refused_ttl)
        self._memo(tenant, entry)
        with contextlib.suppress(StoreUnavailable):
            await self.store.remember_account(tenant.id, *entry)

    async def require(self, tenant: Tenant) -> str:
        """The account, for a call that must be kept per person (gated calls, the audit)."""
        try:
            account = await self.of(tenant)
        except Unavailable as exc:
            raise ToolError(
                "unavailable", f"Cannot tell whose account this is right now ({exc}); nothing was sent.",
                retryable=True, hint="Try again shortly.",
            ) from None  # fmt: skip
        if account is None:
            raise ToolError(
                "unauthorized", "Relatel refused the token: it is missing, invalid or revoked.", 401
            )
        return account

    async def _ask(self, tenant: Tenant) -> str | None:
        try:
            response = await self.client.send(
                UpstreamRequest("GET", "/api/v2/employee"), tenant, idempotent=True, expect_json=True
            )
        except ToolError as exc:
            raise Unavailable(exc.message) from None
        if response.status_code in (401, 403):
            return None
        if response.status_code != 200:
            raise Unavailable(f"Relatel answered HTTP {response.status_code}")
        try:
            employee = response.json()["employee"]
            return account_id(employee["company_id"], employee["id"])
        except (ValueError, KeyError, TypeError):
            raise Unavailable("Relatel's answer did not say who the token belongs to") from None

    def _memo(self, tenant: Tenant, entry: tuple[str | None, float]) -> None:
        self._cache[tenant.id] = entry
        self._cache.move_to_end(tenant.id)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
