"""What an account can use: which of the catalogue's requirements (tools.yaml `requires`) the
token's employee and company lack, so that tools/list leaves out tools that can only fail.

Asked of Relatel once per account and kept for `ttl` seconds, as cheaply as Relatel allows (each
read once, never repeated: a probe that fails says nothing):

    admin            the current employee's `admin` (GET /api/v2/employee, the request that also
                     finds the token's account: no request of its own)
    switch           "switch" among that employee's `features` (the same answer)
    m2m              GET /api/v2/m2m/subscriptions, the smallest M2M read (a list of ids):
                     403 means the company has no M2M agreement
    switch_premium   GET /api/v2/receptions/{id}/status for the company's first reception (from
                     GET /api/v2/receptions): 403 means a plan without Switch Premium

The employee record names neither the plan nor the M2M agreement, so each costs one read; they
are asked only when a tool that needs them would be listed. Only a clear answer hides anything
(`admin: false`, no "switch" feature, a 403): an answer that says nothing (unreachable, 5xx, a
company without receptions) leaves the tools listed. Hiding is a convenience: the gate and
Relatel still refuse what an account cannot do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import anyio

from ..core.catalog import REQUIREMENTS, Operation
from ..core.errors import ToolError, missing_hint
from ..core.request import UpstreamRequest, parsed_json
from .accounts import Accounts, Employee, Unavailable
from .client import RelatelClient, Tenant

PROBES = {  # requirement -> the read whose 403 says the company lacks it
    "m2m": "/api/v2/m2m/subscriptions",
    "switch_premium": "/api/v2/receptions/{reception}/status",
}


@dataclass(frozen=True)
class Lacking:
    """The requirements an account is known to lack (nothing known: nothing lacking)."""

    requirements: frozenset[str] = frozenset()

    def of(self, op: Operation) -> tuple[str, ...]:
        return tuple(r for r in op.requires if r in self.requirements)


NOTHING = Lacking()


def hidden_error(op: Operation, missing: tuple[str, ...]) -> ToolError:
    """A call to a tool this account's tool list leaves out: what is missing; nothing was sent."""
    needs = " and ".join(REQUIREMENTS[r] for r in missing)
    return ToolError(
        "forbidden",
        f"{op.name} needs {needs}, which this account lacks, so it is not in this account's tool "
        "list. Nothing was sent.",
        hint=missing_hint(missing),
    )


class Access:
    """Per account: the requirements it lacks, asked once and kept for `ttl` seconds."""

    def __init__(self, client: RelatelClient, accounts: Accounts, *, ttl: float = 300.0, size: int = 10_000):
        self.client, self.accounts, self.ttl, self.size = client, accounts, ttl, size
        self._known: OrderedDict[str, tuple[dict[str, bool], float]] = OrderedDict()  # account -> lacks?
        self._locks: dict[str, anyio.Lock] = {}

    def known(self, tenant: Tenant) -> Lacking | None:
        """What this token's account was last found to lack, if that is still fresh (no request)."""
        account = self.accounts.last_known(tenant)
        entry = self._known.get(account) if account else None
        if entry is None or entry[1] < anyio.current_time():
            return None
        return Lacking(frozenset(r for r, lacks in entry[0].items() if lacks))

    async def of(self, tenant: Tenant, needs: Iterable[str]) -> Lacking:
        """What the account lacks of `needs`, asking Relatel only for what is not known yet. Never
        fails: what cannot be found out counts as not lacking."""
        try:
            employee = await self.accounts.employee(tenant)
        except Unavailable:
            return NOTHING
        if employee is None:  # Relatel refuses the token: every call will say so
            return NOTHING
        lock = self._locks.setdefault(employee.account, anyio.Lock())
        async with lock:  # concurrent lists of one account ask once
            found = self._fresh(employee.account)
            for requirement in set(needs) - found.keys():  # an unclear answer counts as not lacking
                found[requirement] = bool(await self._lacks(requirement, employee, tenant))
            self._keep(employee.account, found)
        return Lacking(frozenset(r for r in needs if found.get(r)))

    def _fresh(self, account: str) -> dict[str, bool]:
        entry = self._known.get(account)
        return dict(entry[0]) if entry is not None and entry[1] >= anyio.current_time() else {}

    def _keep(self, account: str, found: dict[str, bool]) -> None:
        entry = self._known.get(account)
        expiry = entry[1] if entry is not None and entry[1] >= anyio.current_time() else None
        self._known[account] = (found, expiry or anyio.current_time() + self.ttl)
        self._known.move_to_end(account)
        while len(self._known) > self.size:
            gone, _ = self._known.popitem(last=False)
            self._locks.pop(gone, None)

    async def _lacks(self, requirement: str, employee: Employee, tenant: Tenant) -> bool | None:
        """True or False where Relatel says so clearly; None where it does not."""
        if requirement == "admin":
            return None if employee.admin is None else not employee.admin
        if requirement == "switch":
            return None if employee.features is None else "switch" not in employee.features
        path = PROBES.get(requirement)
        if path is None:
            return None
        if "{reception}" in path:
            reception = await self._first_reception(tenant)
            if reception is None:
                return None
            path = path.format(reception=reception)
        status = await self._status(path, tenant)
        if status == 403:
            return True
        return False if status is not None and 200 <= status < 300 else None

    async def _first_reception(self, tenant: Tenant) -> int | None:
        try:
            response = await self.client.send(
                UpstreamRequest("GET", "/api/v2/receptions"), tenant, expect_json=True
            )
            receptions = parsed_json(response)["receptions"] if response.status_code == 200 else []
            return int(receptions[0]["id"]) if receptions else None
        except (ToolError, ValueError, KeyError, TypeError, IndexError):
            return None

    async def _status(self, path: str, tenant: Tenant) -> int | None:
        try:
            response = await self.client.send(UpstreamRequest("GET", path), tenant)
        except ToolError:
            return None
        return response.status_code
