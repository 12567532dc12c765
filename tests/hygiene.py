"""Token hygiene over the whole suite's traffic: every result and error an MCP client received,
every log line (at DEBUG, from every library) and every audit record, scanned for credentials.

The suite's default token is recognisable (HYGIENE_TOKEN); the demo tokens, the tenant tokens and
the MCP API keys the tests use are looked for too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relatel_mcp.logs import JsonFormatter

HYGIENE_TOKEN = "sandbox-tenant-HYGIENE-7f3a9c1e5b"
SECRETS = re.compile(
    r"sandbox-(?:admin|employee|starter)\b|sandbox-(?:tenant|oauth)-[A-Za-z0-9_-]+|leaked-token-abc123"
    r"|key-(?:one|two)-0123456789abcdef|rmcp_[ar]t_[A-Za-z0-9_-]+"
)
STATE_DIRS: list[Path] = []  # every state directory a test server used (see support.settings_for)


@dataclass
class Hygiene:
    results: int = 0
    log_lines: int = 0
    audit_records: int = 0
    hits: list[str] = field(default_factory=list)
    planted: list[str] = field(default_factory=list)  # see `planting`
    audited: set[Path] = field(default_factory=set)

    @contextmanager
    def planting(self, *strings: str) -> Iterator[None]:
        """While a test itself puts these exact strings (each holding a credential) where the
        server never would: they, and only they, are not counted; any other credential in the
        same text still is."""
        self.planted.extend(strings)
        try:
            yield
        finally:
            for string in strings:
                self.planted.remove(string)

    def scan(self, where: str, text: str) -> None:
        for planted in self.planted:
            text = text.replace(planted, "[planted by the test]")
        if found := SECRETS.search(text):
            self.hits.append(f"{where}: ...{text[max(0, found.start() - 60) : found.end() + 20]}...")

    def scan_stderr(self, where: str, stderr: str) -> None:
        """A server subprocess's stderr: every line it logged (and anything else it said)."""
        for line in stderr.splitlines():
            self.log_lines += 1
            self.scan(f"stderr of {where}", line)

    def scan_audit(self) -> None:
        """The audit of every state directory a test server used, each once."""
        from .stores import STORES

        for directory in STATE_DIRS:
            if directory in self.audited:
                continue
            self.audited.add(directory)
            for row in STORES.audit_rows(directory):
                self.audit_records += 1
                self.scan(f"audit record of {directory}", repr(row))


HYGIENE = Hygiene()  # the run's one record: conftest.py feeds it, tests/support.py's helpers too


class ScanningHandler(logging.Handler):
    def __init__(self, hygiene: Hygiene) -> None:
        super().__init__(level=logging.DEBUG)
        self.hygiene = hygiene

    def emit(self, record: logging.LogRecord) -> None:
        self.hygiene.log_lines += 1
        try:
            text = JsonFormatter().format(record)  # exactly the line the server writes to stderr
        except Exception:  # a library's malformed log call is not ours to judge
            text = str(record.msg)
        self.hygiene.scan(f"log line from {record.name}", text)


def scan_result(hygiene: Hygiene, result: Any) -> Any:
    """An MCP result, or a Toolkit's (JSON-able data)."""
    hygiene.results += 1
    text = json.dumps(result) if isinstance(result, dict) else result.model_dump_json(by_alias=True)
    hygiene.scan("a result", text)
    return result
