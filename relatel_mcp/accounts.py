"""Who a token acts as: the Relatel account (company and employee) behind it.

Budgets, confirmations and the audit follow the person, not the token: a second token of the same
employee shares their budget and their audit. The account is asked of Relatel once per token
(`GET /api/v2/employee`) and cached; the same answer tells whether a remote client's token is
valid at all, so checking a credential and finding its account cost one request together.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from .client import RelatelClient, Tenant, UpstreamRequest
from .errors import ToolError


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
        self, client: RelatelClient, *, ttl: float = 300.0, refused_ttl: float = 30.0, size: int = 10_000
    ) -> None:
        self.client = client
        self.ttl, self.refused_ttl, self.size = ttl, refused_ttl, size
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def known(self, tenant: Tenant) -> bool:
        """Is a fresh answer for this token at hand (so asking costs no request)?"""
        cached = self._cache.get(tenant.id)
        return cached is not None and cached[1] >= time.monotonic()

    def last_known(self, tenant: Tenant) -> str | None:
        """The account last seen for this token, however long ago (a token's account never changes)."""
        cached = self._cache.get(tenant.id)
        return cached[0] if cached else None

    async def of(self, tenant: Tenant) -> str | None:
        if not self.known(tenant):
            self._remember(tenant, await self._ask(tenant))
        self._cache.move_to_end(tenant.id)
        return self._cache[tenant.id][0]

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

    def _remember(self, tenant: Tenant, account: str | None) -> None:
        expires = time.monotonic() + (self.ttl if account is not None else self.refused_ttl)
        self._cache[tenant.id] = (account, expires)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
