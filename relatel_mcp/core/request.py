"""`UpstreamRequest`: exactly what one call sends to Relatel, as the catalogue builds it and the
client sends it (and a dry run shows it); `parsed_json`: its answer's JSON, parsed once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import httpx2


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


_parsed: WeakKeyDictionary[httpx2.Response, Any] = WeakKeyDictionary()


def parsed_json(response: httpx2.Response) -> Any:
    """The response's JSON, parsed once however often it is asked for (ValueError if it is none)."""
    if response not in _parsed:
        _parsed[response] = json.loads(response.content)
    return _parsed[response]
