"""What the operator decides: how each kind of action is confirmed, budgets, destinations, prices.

Read from a TOML file (`--config`, env RELATEL_MCP_CONFIG) and overridden by flags. Defaults fail
closed: costly and destructive actions need a human's confirmation, Danish numbers only, no
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

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

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


def load_policy(path: Path | None, **overrides: Any) -> Policy:
    policy = _from_file(path) if path is not None else Policy()
    policy = replace(policy, **{k: v for k, v in overrides.items() if v is not None})
    for kind in ("costly", "destructive"):
        mode = ALIASES.get(getattr(policy, kind), getattr(policy, kind))
        if mode not in MODES:
            raise PolicyError(f"policy for {kind} must be one of {', '.join(MODES)}")
        policy = replace(policy, **{kind: mode})
    return policy


def _from_file(path: Path) -> Policy:
    import tomllib  # only with a policy file

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from None
    known = {"policy", "budgets", "destinations", "prices", "confirmation"}
    if unknown := set(document) - known:
        raise PolicyError(f"{path}: unknown sections {sorted(unknown)}")
    section = _section(path, document)
    policy_section = section("policy", {"costly", "destructive", "read_only", "dry_run"})
    destinations = section("destinations", {"allow", "block_premium_rate"})
    confirmation = section("confirmation", {"token_ttl_seconds", "elicit_timeout_seconds"})
    values: dict[str, Any] = {**policy_section, **confirmation}
    if "allow" in destinations:
        values["allow_prefixes"] = tuple(_prefix(path, p) for p in destinations["allow"])
    if "block_premium_rate" in destinations:
        values["block_premium_rate"] = destinations["block_premium_rate"]
    values["budgets"] = Budgets(**_numbers(path, "budgets", section("budgets", _names(Budgets)), int))
    values["prices"] = Prices(**_numbers(path, "prices", section("prices", _names(Prices)), float))
    return Policy(**values)


def _section(path: Path, document: Mapping[str, Any]) -> Any:
    def read(name: str, allowed: set[str]) -> dict[str, Any]:
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise PolicyError(f"{path}: [{name}] must be a table")
        if unknown := set(table) - allowed:
            raise PolicyError(f"{path}: unknown keys in [{name}]: {sorted(unknown)}")
        return dict(table)

    return read


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _numbers(path: Path, name: str, table: dict[str, Any], kind: type) -> dict[str, Any]:
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise PolicyError(f"{path}: [{name}] {key} must be a number of at least 0")
        table[key] = kind(value)
    return table


def _prefix(path: Path, value: Any) -> str:
    text = str(value).lstrip("+")
    if not text.isdigit():
        raise PolicyError(f'{path}: [destinations] allow entries are digit prefixes like "45", not {value!r}')
    return text


def default_state_dir(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("RELATEL_MCP_STATE_DIR"):
        return Path(env["RELATEL_MCP_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "relatel-mcp"
