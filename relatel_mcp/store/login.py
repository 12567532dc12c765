"""The token `relatel-mcp login` keeps, for the server to use when RELATEL_TOKEN is unset: in the
OS keyring where the optional `keyring` package finds one, else in `login.json` in the state
directory (0600); kept for the base URL it was issued for, and used for no other."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .base import private_directory, private_file

KEYRING_SERVICE = "relatel-mcp"


@dataclass(frozen=True)
class Identity:
    name: str
    employee_id: int
    company_id: int

    def __str__(self) -> str:
        return f"{self.name} (employee {self.employee_id} of company {self.company_id})"


class StoredLogin:
    """The token of the last login: in the OS keyring if there is one, else in a 0600 file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "login.json"

    def save(self, base_url: str, token: str, who: Identity) -> str:
        """Keep it; where it went, for telling the user."""
        private_directory(self.path.parent)
        in_keyring = _keyring_set(base_url, token)
        record: dict[str, Any] = {
            "base_url": base_url,
            "token": None if in_keyring else token,
            "keyring": in_keyring,
            "employee": {"name": who.name, "id": who.employee_id, "company_id": who.company_id},
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        private_file(self.path).write_text(json.dumps(record, indent=1))
        return "the OS keyring" if in_keyring else str(self.path)

    def token(self, base_url: str) -> str | None:
        """The stored token for this base URL (a token is never sent to another one)."""
        record = self._record()
        if record is None or record.get("base_url") != base_url:
            return None
        return _keyring_get(base_url) if record.get("keyring") else record.get("token")

    def remove(self) -> bool:
        record = self._record()
        if record is None:
            return False
        if record.get("keyring"):
            _keyring_delete(str(record.get("base_url")))
        self.path.unlink()
        return True

    def _record(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None


def _keyring() -> Any:
    """The OS keyring, where the optional `keyring` package finds a real one; else None."""
    try:
        import keyring
        from keyring.backends.fail import Keyring as NoKeyring
    except ImportError:
        return None
    backend = keyring.get_keyring()
    return None if isinstance(backend, NoKeyring) or getattr(backend, "priority", 0) < 1 else keyring


def _keyring_set(base_url: str, token: str) -> bool:
    ring = _keyring()
    if ring is None:
        return False
    try:
        ring.set_password(KEYRING_SERVICE, base_url, token)
    except Exception:  # a locked or broken keyring: the file it is
        return False
    return True


def _keyring_get(base_url: str) -> str | None:
    ring = _keyring()
    return ring.get_password(KEYRING_SERVICE, base_url) if ring is not None else None


def _keyring_delete(base_url: str) -> None:
    ring = _keyring()
    if ring is not None:
        with contextlib.suppress(Exception):
            ring.delete_password(KEYRING_SERVICE, base_url)
