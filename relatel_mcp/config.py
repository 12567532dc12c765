"""Settings from the environment, overridable by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .policy.settings import Policy, default_state_dir

DEFAULT_BASE_URL = "https://app.relatel.dk"


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    token: str | None = None
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    toolsets: frozenset[str] | None = None
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


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 600:
        raise ConfigError(f"{name} must be between 0 and 600 seconds")
    return value


def _set(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())
