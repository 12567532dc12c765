"""The one configuration: command-line flags, the environment and the policy file, read here and
nowhere else.

For each setting the first of these that says something wins: the flag, its environment variable
(`Environment`, every variable relatel-mcp reads), the policy file (`--config`, for the policy it
holds), the default. `load_settings` combines them into one frozen `Settings`; the command line,
the Toolkit and the tests all start there. A wrong value stops start-up with one line naming the
setting (`ConfigError`, `PolicyError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .core.errors import ConfigError
from .policy.rules import ALIASES, MODES, Budgets, Policy, PolicyError, Prices

DEFAULT_BASE_URL = "https://app.relatel.dk"
SESSION_IDLE_SECONDS = 1800.0  # the MCP SDK's own default: docs/remote.md#sessions says why
LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
Auth = Literal["api-key", "passthrough", "oauth", "none"]
AUTH_MODES: tuple[str, ...] = get_args(Auth)

Names = Annotated[tuple[str, ...], NoDecode]  # comma-separated in the environment


class Environment(BaseSettings):
    """Every environment variable relatel-mcp reads, by its own name (empty counts as unset)."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    token: str | None = Field(None, validation_alias="RELATEL_TOKEN", repr=False)
    base_url: str | None = Field(None, validation_alias="RELATEL_BASE_URL")
    connect_timeout: float = Field(5.0, validation_alias="RELATEL_CONNECT_TIMEOUT", ge=0.001, le=600)
    read_timeout: float = Field(30.0, validation_alias="RELATEL_READ_TIMEOUT", ge=0.001, le=600)
    retries: int = Field(2, validation_alias="RELATEL_MCP_RETRIES", ge=0, le=10)
    rate_per_second: float = Field(10.0, validation_alias="RELATEL_MCP_RATE_PER_SECOND", ge=0, le=1000)
    rate_burst: int = Field(20, validation_alias="RELATEL_MCP_RATE_BURST", ge=1, le=10_000)
    max_result_bytes: int = Field(
        40_000, validation_alias="RELATEL_MCP_MAX_RESULT_BYTES", ge=1000, le=10_000_000
    )
    toolsets: Names = Field((), validation_alias="RELATEL_MCP_TOOLSETS")
    all_tools: bool = Field(False, validation_alias="RELATEL_MCP_ALL_TOOLS")
    config: Path | None = Field(None, validation_alias="RELATEL_MCP_CONFIG")
    sandbox: bool = Field(False, validation_alias="RELATEL_MCP_SANDBOX")
    state_dir: Path | None = Field(None, validation_alias="RELATEL_MCP_STATE_DIR")
    xdg_state_home: Path | None = Field(None, validation_alias="XDG_STATE_HOME")
    secret: str | None = Field(None, validation_alias="RELATEL_MCP_SECRET", repr=False)
    store: str | None = Field(None, validation_alias="RELATEL_MCP_STORE", repr=False)
    kill_switch: bool = Field(False, validation_alias="RELATEL_MCP_KILL_SWITCH")
    audit_retention_days: int = Field(0, validation_alias="RELATEL_MCP_AUDIT_RETENTION_DAYS", ge=0, le=36_500)
    log_level: LogLevel = Field("info", validation_alias="RELATEL_MCP_LOG_LEVEL")
    auth: Auth = Field("api-key", validation_alias="RELATEL_MCP_AUTH")
    api_keys: Names = Field((), validation_alias="RELATEL_MCP_API_KEYS", repr=False)
    allowed_hosts: Names = Field((), validation_alias="RELATEL_MCP_ALLOWED_HOSTS")
    public_url: str | None = Field(None, validation_alias="RELATEL_MCP_PUBLIC_URL")
    session_idle_seconds: float = Field(
        SESSION_IDLE_SECONDS, validation_alias="RELATEL_MCP_SESSION_IDLE_SECONDS", ge=1, le=86_400
    )
    client_id: str | None = Field(None, validation_alias="RELATEL_CLIENT_ID")
    client_secret: str | None = Field(None, validation_alias="RELATEL_CLIENT_SECRET", repr=False)
    metrics_token: str | None = Field(None, validation_alias="RELATEL_MCP_METRICS_TOKEN", repr=False)
    # The standard OpenTelemetry variables that decide whether traces are exported (`traces_asked`);
    # the SDK reads these and the rest of OTEL_* itself.
    otel_sdk_disabled: str | None = Field(None, validation_alias="OTEL_SDK_DISABLED")
    otel_traces_exporter: str | None = Field(None, validation_alias="OTEL_TRACES_EXPORTER")
    otel_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT", repr=False)
    otel_traces_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", repr=False
    )
    otel_protocol: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_PROTOCOL")
    otel_traces_protocol: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")

    @field_validator("toolsets", "api_keys", "allowed_hosts", mode="before")
    @classmethod
    def _names(cls, raw: Any) -> Any:
        return _names(raw) if isinstance(raw, str) else raw

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, token: str | None) -> str | None:
        if token is not None and not (len(token) >= 16 and re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token)):
            raise ValueError("must be at least 16 characters of A-Z, a-z, 0-9 and -._~+/ (a bearer token)")
        return token

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, raw: Any) -> Any:
        return raw.strip().lower() if isinstance(raw, str) else raw

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Environment:
        """The process's environment, or `env` in its place; a bad value is a `ConfigError`."""
        try:
            if env is None:
                return cls()
            return cls.model_validate({k: v for k, v in env.items() if v != ""})
        except ValidationError as exc:
            raise ConfigError(_problem(exc)) from None


def variables() -> tuple[str, ...]:
    """The names of every environment variable relatel-mcp reads."""
    return tuple(str(info.validation_alias) for info in Environment.model_fields.values())


@dataclass(frozen=True)
class Settings:
    """What the server runs with. Built by `load_settings`; tests and benchmarks build one directly."""

    token: str | None = field(default=None, repr=False)
    token_source: str | None = None  # "RELATEL_TOKEN" or "login" (relatel-mcp login): for hints
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    toolsets: frozenset[str] | None = None
    retries: int = 2  # extra attempts for idempotent requests (never for costly ones)
    rate_per_second: float = 10.0  # upstream requests per tenant; 0 turns the limiter off
    rate_burst: int = 20
    max_result_bytes: int = 40_000  # larger results are cut, with a note and a cursor
    policy: Policy = field(default_factory=Policy)
    state_dir: Path = field(default_factory=lambda: default_state_dir(Environment.read()))
    secret: str | None = field(default=None, repr=False)  # seals confirmation tokens; shared by replicas
    store: str | None = field(default=None, repr=False)  # postgresql:// URL; None: SQLite in state_dir
    all_tools: bool = False  # list every tool, also those this account lacks what they need for
    kill_switch: bool = False  # every costly action stopped (the KILL_SWITCH file does it at run time)
    sandbox: bool = False  # serve the built-in simulated account (the command line starts it)
    audit_retention_days: int = 0  # audit records older than this are pruned; 0 keeps them all
    remote: Remote = field(default_factory=lambda: Remote())
    traces: Traces = field(default_factory=lambda: Traces())  # `serve` exports spans where asked

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


@dataclass(frozen=True)
class Remote:
    """What serving remote agents over HTTP needs beyond the flags of `serve` alone."""

    auth: Auth = "api-key"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    allowed_hosts: tuple[str, ...] = ()
    public_url: str | None = None
    client_id: str | None = None  # your application at Relatel: login and --auth oauth
    client_secret: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics: Prometheus's bearer
    session_idle_seconds: float = SESSION_IDLE_SECONDS  # an HTTP session without requests this long ends


@dataclass(frozen=True)
class Traces:
    """Whether `relatel-mcp serve` exports traces over OTLP/HTTP (docs/operations.md#traces)."""

    asked_by: str | None = None  # the OTEL_* variable that asks for them; None: no traces
    problem: str | None = None  # asked for in a way this server does not export: said at start-up


def traces_asked(environment: Environment) -> Traces:
    """Traces are exported when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
    is set, or OTEL_TRACES_EXPORTER is otlp; unless OTEL_SDK_DISABLED is true or
    OTEL_TRACES_EXPORTER is none. Another exporter, or an OTLP protocol other than http/protobuf,
    is a problem said on stderr, and serving goes on without traces."""
    e = environment
    exporters = {name.strip().lower() for name in (e.otel_traces_exporter or "").split(",")} - {""}
    if (e.otel_sdk_disabled or "").strip().lower() == "true" or "none" in exporters:
        return Traces()
    if exporters - {"otlp"}:
        return Traces(problem=_unexported("OTEL_TRACES_EXPORTER", e.otel_traces_exporter, "otlp"))
    asking = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": e.otel_traces_endpoint,
        "OTEL_EXPORTER_OTLP_ENDPOINT": e.otel_endpoint,
        "OTEL_TRACES_EXPORTER": exporters,  # otlp, by now
    }
    asked = next((name for name, value in asking.items() if value), None)
    if asked is None:
        return Traces()
    protocol = (
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" if e.otel_traces_protocol else "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    value = e.otel_traces_protocol or e.otel_protocol
    if value is not None and value.strip().lower() != "http/protobuf":
        return Traces(problem=_unexported(protocol, value, "http/protobuf (OTLP over HTTP)"))
    return Traces(asked_by=asked)


def _unexported(name: str, value: str | None, supported: str) -> str:
    return f"{name}={value} is not supported: relatel-mcp exports traces with {supported} only. Serving without traces."


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    sandbox: bool | None = None,
    config: Path | None = None,
    toolsets: str | Iterable[str] | None = None,
    base_url: str | None = None,
    state_dir: Path | None = None,
    store: str | None = None,
    all_tools: bool | None = None,
    auth: Auth | None = None,
    allowed_hosts: str | None = None,
    public_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    session_idle_seconds: float | None = None,
    audit_retention_days: int | None = None,
    **policy: Any,
) -> Settings:
    """The settings to run with: each flag given (not None), else the environment (`env`, or the
    process's), else the policy file, else the default. `policy` holds the policy's flags
    (costly, destructive, read_only, dry_run).

    A sandbox trial keeps its state to itself: RELATEL_MCP_STORE and RELATEL_MCP_STATE_DIR are
    not read for it (only --store and --state-dir), and it needs no token."""
    environment = Environment.read(env)
    sandbox = environment.sandbox if sandbox is None else sandbox
    names = _names(toolsets) if isinstance(toolsets, str) else tuple(toolsets or ())
    settings = Settings(
        token=environment.token,
        token_source="RELATEL_TOKEN" if environment.token else None,
        base_url=check_base_url(base_url or environment.base_url or DEFAULT_BASE_URL),
        connect_timeout=environment.connect_timeout,
        read_timeout=environment.read_timeout,
        retries=environment.retries,
        rate_per_second=environment.rate_per_second,
        rate_burst=environment.rate_burst,
        max_result_bytes=environment.max_result_bytes,
        toolsets=frozenset(names or environment.toolsets) or None,
        policy=load_policy(config or environment.config, **policy),
        state_dir=state_dir or (default_state_dir(environment, sandbox=sandbox)),
        secret=environment.secret,
        store=store or (None if sandbox else environment.store),
        all_tools=environment.all_tools if all_tools is None else all_tools,
        kill_switch=environment.kill_switch,
        sandbox=sandbox,
        audit_retention_days=audit_retention(audit_retention_days, environment),
        remote=Remote(
            auth=auth or environment.auth,
            api_keys=environment.api_keys,
            allowed_hosts=_names(allowed_hosts) if allowed_hosts is not None else environment.allowed_hosts,
            public_url=public_url or environment.public_url,
            client_id=client_id or environment.client_id,
            client_secret=client_secret or environment.client_secret,
            metrics_token=environment.metrics_token,
            session_idle_seconds=_session_idle(session_idle_seconds, environment),
        ),
        traces=traces_asked(environment),
    )
    if settings.token is None and not sandbox:  # `relatel-mcp login` keeps one, for its base URL
        from .store.login import StoredLogin

        stored = StoredLogin(settings.state_dir).token(settings.base_url)
        settings = replace(settings, token=stored, token_source="login" if stored else None)
    settings.check()
    return settings


def log_level(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """--log-level, else RELATEL_MCP_LOG_LEVEL, else info: known before anything else is read."""
    return flag or Environment.read(env).log_level


def audit_retention(flag: int | None, environment: Environment | None = None) -> int:
    """--audit-retention-days, else RELATEL_MCP_AUDIT_RETENTION_DAYS, else 0 (keep every record)."""
    if flag is not None:
        if not 0 <= flag <= 36_500:
            raise ConfigError("--audit-retention-days must be between 0 and 36500 (0 keeps every record)")
        return flag
    return (environment or Environment.read()).audit_retention_days


def default_state_dir(environment: Environment | None = None, *, sandbox: bool = False) -> Path:
    """RELATEL_MCP_STATE_DIR, else relatel-mcp under XDG_STATE_HOME (~/.local/state). For a
    sandbox trial: the same path, which the command line replaces with a throwaway directory."""
    environment = environment or Environment.read()
    if environment.state_dir is not None and not sandbox:
        return environment.state_dir
    return (environment.xdg_state_home or Path.home() / ".local" / "state") / "relatel-mcp"


def _session_idle(flag: float | None, environment: Environment) -> float:
    """--session-idle-seconds, held to the bounds of RELATEL_MCP_SESSION_IDLE_SECONDS."""
    if flag is None:
        return environment.session_idle_seconds
    info = Environment.model_fields["session_idle_seconds"]
    low, high = (getattr(m, attr) for attr in ("ge", "le") for m in info.metadata if hasattr(m, attr))
    if not low <= flag <= high:  # also NaN
        raise ConfigError(f"--session-idle-seconds must be between {low:g} and {high:g}")
    return flag


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


# ------------------------------------------------------------------------------ the policy file


def load_policy(path: Path | None, **overrides: Any) -> Policy:
    """The policy file's (`--config`), each override given (not None) in place of its value. The
    file is TOML, every key optional, the defaults failing closed: its tables and keys are drawn in
    relatel_mcp/policy/rules.py and docs/configuration.md."""
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
    values["budgets"] = Budgets(**_numbers(path, "budgets", section("budgets", _fields(Budgets)), int))
    values["prices"] = Prices(**_numbers(path, "prices", section("prices", _fields(Prices)), float))
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


def _fields(cls: type) -> set[str]:
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


# ------------------------------------------------------------------------------ helpers


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _problem(exc: ValidationError) -> str:
    """The first bad variable, in the words a person setting it needs."""
    error = exc.errors()[0]
    name = str(error["loc"][0])
    raw = error.get("input")
    kind = error["type"]
    if kind == "bool_parsing":
        return f"{name} must be true or false (1 or 0), not {raw!r}"
    if kind == "literal_error":
        field_info = next(f for f in Environment.model_fields.values() if f.validation_alias == name)
        return f"{name} must be one of {', '.join(get_args(field_info.annotation))}, not {raw!r}"
    if kind in ("float_parsing", "int_parsing", "int_from_float"):
        return f"{name} must be a number, not {raw!r}"
    if kind in ("greater_than_equal", "less_than_equal"):
        field_info = next(f for f in Environment.model_fields.values() if f.validation_alias == name)
        low, high = (
            getattr(m, attr) for attr in ("ge", "le") for m in field_info.metadata if hasattr(m, attr)
        )
        return f"{name} must be between {low:g} and {high:g}"
    if kind == "value_error":
        return f"{name} {error['msg'].removeprefix('Value error, ')}"
    return f"{name}: {error['msg']}"
