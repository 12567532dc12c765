"""Settings from the environment, overridable by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .policy.settings import Policy, default_state_dir, load_policy

DEFAULT_BASE_URL = "https://app.relatel.dk"


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    toolsets: frozenset[str] | None = None
    retries: int = 2  # extra attempts for idempotent requests (never for costly ones)
    rate_per_second: float = 10.0  # upstream requests per tenant; 0 turns the limiter off
    rate_burst: int = 20
    max_result_bytes: int = 40_000  # larger results are cut, with a note and a cursor
    policy: Policy = field(default_factory=Policy)
    state_dir: Path = field(default_factory=default_state_dir)
    secret: str | None = field(default=None, repr=False)  # seals confirmation tokens; shared by replicas

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        settings = cls(
            token=env.get("RELATEL_TOKEN") or None,
            base_url=env.get("RELATEL_BASE_URL") or DEFAULT_BASE_URL,
            connect_timeout=_number(env, "RELATEL_CONNECT_TIMEOUT", 5.0),
            read_timeout=_number(env, "RELATEL_READ_TIMEOUT", 30.0),
            retries=int(_number(env, "RELATEL_MCP_RETRIES", 2, low=0, high=10)),
            rate_per_second=_number(env, "RELATEL_MCP_RATE_PER_SECOND", 10.0, low=0, high=1000),
            rate_burst=int(_number(env, "RELATEL_MCP_RATE_BURST", 20, low=1, high=10_000)),
            max_result_bytes=int(
                _number(env, "RELATEL_MCP_MAX_RESULT_BYTES", 40_000, low=1000, high=10_000_000)
            ),
            toolsets=_set(env.get("RELATEL_MCP_TOOLSETS")),
            state_dir=default_state_dir(env),
            secret=env.get("RELATEL_MCP_SECRET") or None,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def require_token(self) -> str:
        if not self.token:
            raise ConfigError(
                "RELATEL_TOKEN is not set. Create an access token at "
                "https://app.relatel.dk/account/authorized_applications and set RELATEL_TOKEN, "
                "or try the server without an account: relatel-mcp serve --sandbox"
            )
        return self.token


def load_settings(
    *,
    config: Path | None = None,
    toolsets: str | Iterable[str] | None = None,
    base_url: str | None = None,
    state_dir: Path | None = None,
    env: Mapping[str, str] = os.environ,
    **policy: Any,
) -> Settings:
    """The settings the server runs with: the environment, the policy file (`config`, else
    RELATEL_MCP_CONFIG) and `policy` overrides of it (costly, destructive, read_only, dry_run;
    None keeps the file's value). The command line and the Toolkit both start here."""
    path = config or (Path(env["RELATEL_MCP_CONFIG"]) if env.get("RELATEL_MCP_CONFIG") else None)
    return Settings.from_env(
        env,
        base_url=base_url,
        toolsets=_set(toolsets) if isinstance(toolsets, str) else frozenset(toolsets or ()) or None,
        policy=load_policy(path, **policy),
        state_dir=state_dir,
    )


def _number(
    env: Mapping[str, str], name: str, default: float, low: float = 0.001, high: float = 600
) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}")
    return value


def _set(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())
