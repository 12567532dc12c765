"""Settings from the environment, overridable by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import StartUpError
from .policy.settings import Policy, default_state_dir, load_policy

DEFAULT_BASE_URL = "https://app.relatel.dk"


class ConfigError(StartUpError):
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
    store: str | None = field(default=None, repr=False)  # postgresql:// URL; None: SQLite in state_dir
    all_tools: bool = False  # list every tool, also those this account lacks what they need for

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
            store=env.get("RELATEL_MCP_STORE") or None,
            all_tools=flag(env, "RELATEL_MCP_ALL_TOOLS"),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        settings = replace(settings, base_url=check_base_url(settings.base_url))
        if settings.token is None:  # `relatel-mcp login` keeps one, for the base URL it came from
            from .oauth.login import StoredLogin

            settings = replace(settings, token=StoredLogin(settings.state_dir).token(settings.base_url))
        settings.check()
        return settings

    def check(self) -> None:
        if self.store is None:
            return
        if not self.store.startswith(("postgresql://", "postgres://")):
            raise ConfigError("RELATEL_MCP_STORE (--store) must be a postgresql:// URL, or unset for SQLite")
        if not self.secret:
            raise ConfigError(
                "a shared store needs a shared RELATEL_MCP_SECRET (32+ characters, the same on every "
                "replica), so that a confirmation sealed by one replica opens on another"
            )

    def require_token(self) -> str:
        if not self.token:
            raise ConfigError(
                "RELATEL_TOKEN is not set and nobody is logged in. Run relatel-mcp login, or create an "
                "access token at https://app.relatel.dk/account/authorized_applications and set "
                "RELATEL_TOKEN, or try the server without an account: relatel-mcp serve --sandbox"
            )
        return self.token


def check_base_url(raw: str) -> str:
    """The API's origin (http or https, a host, no path): the server appends /api/v2/... itself.

    A base URL without a scheme fails every call as a lost connection, and one with a path as a
    missing id, so it is refused at start-up, saying what to set instead.
    """
    where = "RELATEL_BASE_URL (or --base-url)"
    url = urlsplit(raw.strip())
    if "@" in url.netloc:  # never echo what may be a credential
        raise ConfigError(f"{where} must not hold a user or password; the token goes in RELATEL_TOKEN")
    if not url.scheme and not url.netloc:  # `app.relatel.dk` or `app.relatel.dk/api/v2`
        host = url.path.split("/")[0]
        raise ConfigError(
            f"{where} needs a scheme: set it to https://{host or 'app.relatel.dk'}, not {raw!r}"
        )
    try:
        url.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ConfigError(f"{where} has an invalid port: {raw!r}") from None
    origin = (
        f"{url.scheme if url.scheme in ('http', 'https') else 'https'}://{url.netloc or 'app.relatel.dk'}"
    )
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"{where} must be an http or https URL: set it to {origin}, not {raw!r}")
    if not url.hostname:
        raise ConfigError(f"{where} has no host: set it to the API's address, e.g. {DEFAULT_BASE_URL}")
    if url.path.strip("/") or url.query or url.fragment:
        raise ConfigError(
            f"{where} must be the API's address without a path (the server adds /api/v2/...): "
            f"set it to {origin}, not {raw!r}"
        )
    return origin


def flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on or 0/false/no/off (unset or empty: no)."""
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be true or false (1 or 0), not {raw!r}")


def load_settings(
    *,
    config: Path | None = None,
    toolsets: str | Iterable[str] | None = None,
    base_url: str | None = None,
    state_dir: Path | None = None,
    store: str | None = None,
    all_tools: bool | None = None,
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
        store=store,
        all_tools=all_tools,
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
