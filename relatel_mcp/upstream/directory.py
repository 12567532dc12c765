"""Directory: the names in an account's own lists (employees, groups, receptions, contacts,
voicemails), for completion/complete.

Each list is read with the catalogue's list tool (COMPLETES in core/prompts.py) as the requesting
tenant, through the one client, at most `pages` pages of `page_size` (a longer list is completed
from what was read, and says there may be more). What was read is kept `ttl` seconds per tenant
and list, for at most `accounts` tenants (the least recently used dropped first), so that typing
a name asks Relatel once, not once per key; a list that could not be read is kept as unreadable
for `failed_ttl` seconds. Two completions of one tenant's list at once share one read. Keyed by
the tenant, a list is only ever answered to the credential it was read with.

Matching is by prefix, case-insensitive, at the start of the name or of any word in it ("mik"
finds "Lone Mikkelsen"); an id also by its own prefix. Names are Relatel's data: cleaned of
hidden characters and folded onto one line before they are kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import anyio

from ..core import catalog
from ..core.catalog import Operation
from ..core.errors import ToolError
from ..core.prompts import COMPLETES
from ..core.request import parsed_json
from ..core.results import next_page
from ..core.sanitize import clean_text
from .client import RelatelClient, Tenant

MAX_VALUES = 100  # the MCP specification's most values in one completion


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    key: str  # the name, case-folded
    starts: tuple[int, ...]  # where the name and each word of it begin in `key`

    @classmethod
    def of(cls, id: str, name: str) -> Entry:
        key = name.casefold()
        starts = tuple(i for i, ch in enumerate(key) if i == 0 or (ch.isalnum() and not key[i - 1].isalnum()))
        return cls(id, name, key, starts)

    def named(self, prefix: str) -> bool:
        return any(self.key.startswith(prefix, i) for i in self.starts)


@dataclass(frozen=True)
class Matches:
    values: list[str]  # at most MAX_VALUES
    total: int | None  # None: unknown (the list was longer than was read)
    has_more: bool


NONE = Matches([], 0, False)


@dataclass(frozen=True)
class Listing:
    """One list as read: its entries in name order, and whether that was the whole list."""

    entries: tuple[Entry, ...]
    whole: bool

    def names(self, typed: str) -> Matches:
        """Distinct names matching what was typed, in name order."""
        prefix = _folded(typed)
        found = list(dict.fromkeys(e.name for e in self.entries if e.named(prefix)))
        return self._matches(found)

    def ids(self, typed: str) -> Matches:
        """Ids (as text) whose id or name starts with what was typed, in name order."""
        prefix = _folded(typed)
        return self._matches([e.id for e in self.entries if e.id.startswith(prefix) or e.named(prefix)])

    def _matches(self, found: list[str]) -> Matches:
        return Matches(
            found[:MAX_VALUES], len(found) if self.whole else None, len(found) > MAX_VALUES or not self.whole
        )


def _folded(text: str) -> str:
    return " ".join(clean_text(text).split()).casefold()


@dataclass
class _Reading:
    done: anyio.Event = field(default_factory=anyio.Event)
    listing: Listing | None = None


class Directory:
    """Per tenant and list: what Relatel lists, read once and kept briefly."""

    def __init__(
        self,
        client: RelatelClient,
        *,
        ttl: float = 60.0,
        failed_ttl: float = 10.0,
        accounts: int = 200,
        pages: int = 5,
        page_size: int = 100,
        max_bytes: int = 4_000_000,
    ) -> None:
        self.client = client
        self.ttl, self.failed_ttl, self.accounts = ttl, failed_ttl, accounts
        self.pages, self.page_size, self.max_bytes = pages, page_size, max_bytes
        self.clock: Callable[[], float] = time.monotonic
        # tenant id -> list -> (expiry, listing or None: unreadable), least recently used first
        self._kept: OrderedDict[str, dict[str, tuple[float, Listing | None]]] = OrderedDict()
        self._reading: dict[tuple[str, str], _Reading] = {}

    async def names(self, tenant: Tenant, kind: str, typed: str) -> Matches:
        listing = await self.listing(tenant, kind)
        return listing.names(typed) if listing is not None else NONE

    async def ids(self, tenant: Tenant, kind: str, typed: str) -> Matches:
        listing = await self.listing(tenant, kind)
        return listing.ids(typed) if listing is not None else NONE

    async def listing(self, tenant: Tenant, kind: str) -> Listing | None:
        """The tenant's list of `kind` (a key of COMPLETES), from memory while fresh; None when
        Relatel could not be read."""
        lists = self._kept.get(tenant.id)
        kept = lists.get(kind) if lists is not None else None
        if kept is not None and kept[0] > self.clock():
            self._kept.move_to_end(tenant.id)
            return kept[1]
        key = (tenant.id, kind)
        reading = self._reading.get(key)
        if reading is not None:  # another completion is reading it: share its answer
            await reading.done.wait()
            return reading.listing
        reading = self._reading[key] = _Reading()
        try:
            reading.listing = await self._read(tenant, kind)
        finally:
            del self._reading[key]
            reading.done.set()
        self._keep(tenant.id, kind, reading.listing)
        return reading.listing

    def _keep(self, tenant_id: str, kind: str, listing: Listing | None) -> None:
        expiry = self.clock() + (self.ttl if listing is not None else self.failed_ttl)
        self._kept.setdefault(tenant_id, {})[kind] = (expiry, listing)
        self._kept.move_to_end(tenant_id)
        while len(self._kept) > self.accounts:
            self._kept.popitem(last=False)

    async def _read(self, tenant: Tenant, kind: str) -> Listing | None:
        op, key = _source(kind)
        paged = op.page is not None and "limit" in op.args.model_fields
        arguments: dict[str, Any] = {"limit": self.page_size} if paged else {}
        records: dict[str, dict[str, Any]] = {}
        most = self.pages * self.page_size
        whole = False
        try:
            for _ in range(self.pages if paged else 1):
                request = op.request(op.args.model_validate(arguments))
                response = await self.client.send(
                    request, tenant, idempotent=True, expect_json=True, max_bytes=self.max_bytes
                )
                if response.status_code != 200:
                    return None
                answer = parsed_json(response)
                items = answer if key is None else answer[key]
                if not isinstance(items, list):
                    return None
                before = len(records)
                for item in items:
                    if isinstance(item, dict) and item.get("id") is not None:
                        records.setdefault(str(item["id"]), item)
                cursor = next_page(op, items) if paged else None
                if not paged or len(items) < self.page_size or len(records) == before or cursor is None:
                    whole = True
                    break
                arguments.update(cursor)
        except (ToolError, ValueError, KeyError, TypeError):  # unreachable, refused, not the shape
            return None
        entries = [Entry.of(id, name) for id, record in records.items() if (name := _name_of(record))]
        entries.sort(key=lambda e: (e.key, len(e.id), e.id))
        return Listing(tuple(entries[:most]), whole and len(entries) <= most)


def _name_of(record: dict[str, Any]) -> str:
    """What a person calls the entry: its name; a voicemail's caller (a contact's name, else the
    number)."""
    contact = record.get("from_contact")
    for name in (record.get("name"), contact.get("name") if isinstance(contact, dict) else None,
                 record.get("from_number")):  # fmt: skip
        if isinstance(name, str) and (text := " ".join(clean_text(name).split())):
            return text
    return ""


@cache
def _source(kind: str) -> tuple[Operation, str | None]:
    """The catalogue's list tool for `kind`, and the key its answer lists the entries under (None:
    the answer is the list itself)."""
    op = next(op for op in catalog.load() if op.name == COMPLETES[kind])
    if op.list_key is not None:
        return op, None
    properties = (op.response or {}).get("properties", {})
    return op, next(name for name, shape in properties.items() if shape.get("type") == "array")
