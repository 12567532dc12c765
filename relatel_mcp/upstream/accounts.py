"""Who a token acts as: the Relatel account (company and employee) behind it.

Budgets, confirmations and the audit follow the person, not the token: a second token of the same
employee shares their budget and their audit. The account is asked of Relatel once per token
(`GET /api/v2/employee`) and cached, in memory and in the store (so that replicas share it); the
same answer tells whether a remote client's token is valid at all, so checking a credential and
finding its account cost one request together. Concurrent lookups of one token share one
request (a stdio server reads its account at start-up while the first call may need it too). The
store is a cache here: when it cannot be reached, tokens are checked with Relatel as if it were
empty. The same answer says what the employee may use (admin, features), kept in memory for
access.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..core.errors import ToolError, unauthorized
from ..core.request import UpstreamRequest, parsed_json
from ..store import Store, StoreUnavailable
from .client import RelatelClient, Tenant


class Unavailable(Exception):
    """Relatel could not say whose the token is right now (unreachable or failing)."""


@dataclass(frozen=True)
class Employee:
    """What the token's employee record says about what it may use."""

    account: str
    admin: bool | None  # None: the record does not say
    features: frozenset[str] | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Employee:
        features = record.get("features")
        return cls(
            account_id(record["company_id"], record["id"]),
            record["admin"] if isinstance(record.get("admin"), bool) else None,
            frozenset(f for f in features if isinstance(f, str)) if isinstance(features, list) else None,
        )


Entry = tuple[str | None, float]  # (account, or None where Relatel refuses the token; expiry)


@dataclass
class _Lookup:
    """One request to Relatel about a token, which every concurrent lookup of it awaits."""

    done: anyio.Event = field(default_factory=anyio.Event)
    entry: Entry | None = None
    error: Exception | None = None


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
        self._employees: OrderedDict[str, tuple[Employee, float]] = OrderedDict()  # kept in memory only
        self._asking: dict[str, _Lookup] = {}  # token pseudonym -> the request about it under way

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

    async def of(
        self, tenant: Tenant, *, before_asking_about_new: Callable[[], None] | None = None
    ) -> str | None:
        """The token's account (None: Relatel refuses it), from the caches or else from Relatel;
        `before_asking_about_new` runs (and may raise) just before Relatel is asked about a token
        never seen valid."""
        cached = await self.cached(tenant)
        if cached is None or cached[1] < time.time():
            if before_asking_about_new is not None and (cached is None or cached[0] is None):
                before_asking_about_new()
            cached = await self._refresh(tenant)
            with contextlib.suppress(StoreUnavailable):  # for other replicas
                await self.store.remember_account(tenant.id, *cached)
        return cached[0]

    async def employee(self, tenant: Tenant) -> Employee | None:
        """The token's employee (admin, features), from the same request that finds its account;
        None where Relatel refuses the token. Kept in memory only: the store is for whose token it
        is, which the credential check asks (`of`)."""
        kept = self._employees.get(tenant.id)
        if kept is None or kept[1] < time.time():
            await self._refresh(tenant)
            kept = self._employees.get(tenant.id)
        return kept[0] if kept is not None else None

    async def _refresh(self, tenant: Tenant) -> Entry:
        """Ask Relatel whose the token is, once for every concurrent caller: the first asks, the
        others await its answer or its error. A failure is not kept: the next lookup asks again.
        Where the one asking is cancelled (its client went away), those waiting ask themselves."""
        while (lookup := self._asking.get(tenant.id)) is not None:
            await lookup.done.wait()
            if lookup.error is not None:
                raise lookup.error
            if lookup.entry is not None:
                return lookup.entry
        lookup = self._asking[tenant.id] = _Lookup()
        try:
            lookup.entry = await self._ask_and_remember(tenant)
            return lookup.entry
        except Exception as exc:
            lookup.error = exc
            raise
        finally:
            del self._asking[tenant.id]
            lookup.done.set()

    async def _ask_and_remember(self, tenant: Tenant) -> Entry:
        """Ask Relatel whose the token is; remember the answer here (account and employee)."""
        employee = await self._ask(tenant)
        if employee is None:
            entry: Entry = (None, time.time() + self.refused_ttl)
            self._employees.pop(tenant.id, None)
        else:
            entry = (employee.account, time.time() + self.ttl)
            _remember(self._employees, tenant.id, (employee, entry[1]), self.size)
        self._memo(tenant, entry)
        return entry

    async def refused(self, tenant: Tenant) -> None:
        """Relatel just refused this token (401): remember that, here and for other replicas, so the
        next request with it is refused at the door (and an OAuth grant holding it ends)."""
        entry = (None, time.time() + self.refused_ttl)
        self._memo(tenant, entry)
        self._employees.pop(tenant.id, None)
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
            raise unauthorized(tenant.source)
        return account

    async def _ask(self, tenant: Tenant) -> Employee | None:
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
            return Employee.from_record(parsed_json(response)["employee"])
        except (ValueError, KeyError, TypeError):
            raise Unavailable("Relatel's answer did not say who the token belongs to") from None

    def _memo(self, tenant: Tenant, entry: tuple[str | None, float]) -> None:
        _remember(self._cache, tenant.id, entry, self.size)


def _remember(cache: OrderedDict[str, Any], key: str, entry: Any, size: int) -> None:
    cache[key] = entry
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
