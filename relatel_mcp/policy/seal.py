"""Sealed tokens: a preview token or an elicitation's request state, bound to one exact call.

A token is `base64url(nonce + AES-GCM(json payload))` under a key derived from the server's
secret: nobody without the secret can make, alter or read one. Unreadable matters too: a
request state travels through the client, which may show it to the model, and it names the
approval page of its question (whose URL is for the human's browser only). `purpose` separates
the two uses, so a request state cannot be replayed as a preview token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..store import private_directory, unusable_state_directory
from .rules import PolicyError

MIN_SECRET_BYTES = 32
_CONTEXT = b"relatel-mcp sealed call"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"the sealing secret must be at least {MIN_SECRET_BYTES} bytes")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(key)
        self._aead = AESGCM(derived)

    def seal(self, payload: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        data = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return _b64(nonce + self._aead.encrypt(nonce, data, _CONTEXT))

    def open(self, token: str) -> dict[str, Any] | None:
        """The payload, or None if the token is malformed or was not sealed with this key."""
        try:
            raw = _unb64(token)
            payload = json.loads(self._aead.decrypt(raw[:12], raw[12:], _CONTEXT))
        except (ValueError, TypeError, InvalidTag):
            return None
        return payload if isinstance(payload, dict) else None


def load_secret(state_dir: Path, env_value: str | None) -> bytes:
    """RELATEL_MCP_SECRET (share it between replicas), else a key generated once in the state dir."""
    if env_value:
        if len(env_value.encode()) < MIN_SECRET_BYTES:
            raise PolicyError(
                f"RELATEL_MCP_SECRET must be at least {MIN_SECRET_BYTES} characters (e.g. the output of "
                "`openssl rand -hex 32`), or unset it to let the server generate one in its state directory"
            )
        return env_value.encode()
    path = private_directory(state_dir) / "secret.key"
    try:
        if not path.exists():
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                pass
            else:
                with os.fdopen(descriptor, "w") as file:
                    file.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
    except OSError as exc:  # e.g. a secret.key another user made: one line, not a traceback
        raise unusable_state_directory(state_dir, exc) from None


def digest(value: Any) -> str:
    """A short stable digest of JSON-able data (canonical: sorted keys, no spaces)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
