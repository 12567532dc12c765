"""The safety layer: who may do what, with whose confirmation, within which budget; and the record.

rules     the operator's policy: how each kind is confirmed, budgets, destinations, prices
approvals approval pages' questions and answers, in the store
facts     what a costly or destructive call would really do, resolved before asking
gate      the checks and the confirmation ladder, failing closed
seal      sealed single-use tokens (preview tokens, elicitation request state)
audit     one append-only record per gated attempt
"""

from __future__ import annotations

from pathlib import Path

from ..core import catalog
from ..core.metrics import NO_METRICS, Metrics
from ..store import Store
from .facts import check_resolvers
from .gate import Approval, Channel, Gate
from .rules import Policy, PolicyError
from .seal import Sealer, load_secret


def open_gate(
    policy: Policy,
    state_dir: Path,
    store: Store,
    secret: str | None = None,
    *,
    kill_switch: bool = False,
    metrics: Metrics = NO_METRICS,
) -> Gate:
    check_resolvers(catalog.load())
    sealer = Sealer(load_secret(state_dir, secret))
    return Gate(policy, store, sealer, state_dir, kill_switch=kill_switch, metrics=metrics)


__all__ = [
    "Approval",
    "Channel",
    "Gate",
    "Policy",
    "PolicyError",
    "open_gate",
]
