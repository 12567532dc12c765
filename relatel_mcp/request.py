"""`UpstreamRequest`: exactly what one call sends to Relatel, as the catalogue builds it and the
client sends it (and a dry run shows it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UpstreamRequest:
    """Exactly what is sent: method, path, query pairs (repeated keys for lists) and JSON body."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            described["query"] = [list(pair) for pair in self.params]
        if self.json is not None:
            described["body"] = self.json
        return described
