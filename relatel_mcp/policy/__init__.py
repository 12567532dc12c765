"""The safety layer: who may do what, with whose confirmation, within which budget; and the record.

settings  the operator's policy (TOML file and flags)
facts     what a costly or destructive call would really do, resolved before asking
gate      the checks and the confirmation ladder, failing closed
seal      sealed single-use tokens (preview tokens, elicitation request state)
audit     one append-only record per gated attempt
"""

from __future__ import annotations

from pathlib import Path

from .. import catalog
from ..store import Store
from .facts import check_resolvers
from .gate import Approval, Channel, Gate
from .seal import Sealer, load_secret
from .settings import Policy, PolicyError, default_state_dir, load_policy


def open_gate(policy: Policy, state_dir: Path, store: Store, secret: str | None = None) -> Gate:
    check_resolvers(catalog.load())
    return Gate(policy, store, Sealer(load_secret(state_dir, secret)), state_dir)


__all__ = [
    "Approval",
    "Channel",
    "Gate",
    "Policy",
    "PolicyError",
    "default_state_dir",
    "load_policy",
    "open_gate",
]
