"""What the operator decides: how each kind of action is confirmed, budgets, destinations, prices.

Read from a TOML file (`--config`, env RELATEL_MCP_CONFIG) and overridden by flags, in
`relatel_mcp/settings.py` (`load_policy`). Defaults fail closed: costly and destructive actions need a human's confirmation, Danish numbers only, no
premium-rate numbers, and small daily budgets.

    [policy]                      # per kind: confirm | preview | allow | deny
    costly = "confirm"            # confirm: a human answers (form or URL elicitation), else refuse
    destructive = "confirm"       # preview: as confirm, else the agent confirms with a preview
                                  # token (stops accidents, not a hijacked agent);
                                  # allow: no question; deny: never
    [budgets]                     # per account per day (UTC); 0 forbids
    calls = 20
    sms_segments = 100
    orders = 5
    [destinations]
    allow = ["45"]                # number prefixes (country code first) calls and SMS may reach
    block_premium_rate = true
    [prices]                      # DKK, shown in the confirmation when set
    call = 0.0
    sms_segment = 0.35
    order = 0.0
    [confirmation]
    token_ttl_seconds = 300
    elicit_timeout_seconds = 120
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Mode = Literal["confirm", "preview", "allow", "deny"]
MODES: tuple[str, ...] = get_args(Mode)
ALIASES = {"elicit": "confirm"}  # the name `confirm` had before it came to mean "a human answers"


class PolicyError(ValueError):
    """The configuration is wrong; the message names the setting."""


@dataclass(frozen=True)
class Budgets:
    calls: int = 20
    sms_segments: int = 100
    orders: int = 5


@dataclass(frozen=True)
class Prices:
    call: float | None = None
    sms_segment: float | None = None
    order: float | None = None


@dataclass(frozen=True)
class Policy:
    costly: Mode = "confirm"
    destructive: Mode = "confirm"
    read_only: bool = False
    dry_run: bool = False
    budgets: Budgets = field(default_factory=Budgets)
    allow_prefixes: tuple[str, ...] = ("45",)
    block_premium_rate: bool = True
    prices: Prices = field(default_factory=Prices)
    token_ttl_seconds: int = 300
    elicit_timeout_seconds: float = 120.0

    def mode(self, kind: str) -> Mode | None:
        """The confirmation mode of a gated kind; None for kinds that need no confirmation."""
        return {"costly": self.costly, "destructive": self.destructive}.get(kind)

    def offers_preview(self, kind: str) -> bool:
        """Does a call of this kind take a `confirmation_token` (the agent confirms)?"""
        return self.mode(kind) == "preview" and not self.dry_run

    def asks(self, kind: str) -> bool:
        """Does a call of this kind wait for a yes (a human's, or in preview mode the agent's)?"""
        return self.mode(kind) in ("confirm", "preview") and not self.dry_run

    def hides(self, kind: str) -> bool:
        """Read-only mode: every kind but reads is hidden and refused."""
        return self.read_only and kind != "read"

    def offers(self, kind: str, *, human: bool) -> bool:
        """Is a tool of this kind worth listing to a client: could a call of it ever be let through?

        `human`: the client has a way to ask its user (MCP elicitation, an app's approval)."""
        mode = self.mode(kind)
        if self.hides(kind) or mode == "deny":
            return False
        return mode != "confirm" or human or self.dry_run
