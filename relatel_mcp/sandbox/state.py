"""`SandboxState`: everything the sandbox remembers, from the seed (data.py) to the faults pending
(faults.py), which the control endpoints reset, read and add to."""

from __future__ import annotations

from dataclasses import dataclass, field

from relatel_mcp.sandbox.data import Company, Record, seed_companies
from relatel_mcp.sandbox.faults import Fault


@dataclass
class SandboxState:
    """Everything the sandbox remembers: company data, the outbox, the request log and pending faults."""

    companies: dict[int, Company] = field(default_factory=dict)
    outbox: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    held: list[Fault] = field(default_factory=list)  # hold faults, until released
    oauth_codes: dict[str, Record] = field(default_factory=dict)  # code -> redirect URI, identity, expiry
    oauth_tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # token -> (company, employee)
    oauth_redirect_uris: tuple[str, ...] = ()  # beyond loopback ones (kept across resets)
    _next_ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.companies:
            self.reset()

    def reset(self) -> None:
        """Restore the seed and forget the outbox, the request log and the faults."""
        self.companies = seed_companies()
        self.outbox.clear()
        self.requests.clear()
        self.faults.clear()
        for fault in self.held:  # nothing stays held past a reset
            fault.released = True
        self.held.clear()
        self.oauth_codes.clear()
        self.oauth_tokens.clear()
        self._next_ids.clear()

    def new_id(self, collection: str) -> int:
        """Next id for a collection, unique across companies (ids never leak between tenants)."""
        if collection not in self._next_ids:
            used = [i for c in self.companies.values() for i in getattr(c, collection)]
            self._next_ids[collection] = max(used, default=0) + 1
        value = self._next_ids[collection]
        self._next_ids[collection] = value + 1
        return value
