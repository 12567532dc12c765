"""One configuration: a flag, else its environment variable, else the policy file, else the
default; read in relatel_mcp/settings.py from the environment it is given (the process's in use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relatel_mcp.core.errors import ConfigError
from relatel_mcp.settings import Environment, load_settings, variables

TOKEN = {"RELATEL_TOKEN": "token-from-the-environment"}


def test_a_flag_wins_over_the_environment_which_wins_over_the_default(tmp_path):
    env = {**TOKEN, "RELATEL_BASE_URL": "https://env.example", "RELATEL_MCP_TOOLSETS": "calls, contacts",
           "RELATEL_MCP_AUTH": "passthrough", "RELATEL_MCP_STATE_DIR": str(tmp_path)}  # fmt: skip
    from_env = load_settings(env=env)
    assert from_env.base_url == "https://env.example" and from_env.toolsets == {"calls", "contacts"}
    assert from_env.remote.auth == "passthrough" and from_env.state_dir == tmp_path
    flagged = load_settings(env=env, base_url="https://flag.example", toolsets="m2m", auth="none")
    assert flagged.base_url == "https://flag.example" and flagged.toolsets == {"m2m"}
    assert flagged.remote.auth == "none"
    default = load_settings(env=TOKEN)
    assert default.base_url == "https://app.relatel.dk" and default.toolsets is None
    assert default.remote.auth == "api-key" and default.retries == 2


def test_the_policy_file_is_named_by_flag_or_environment_and_its_flags_win(tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text('[policy]\ncostly = "deny"\n[budgets]\ncalls = 3\n', encoding="utf-8")
    env = {**TOKEN, "RELATEL_MCP_CONFIG": str(config)}
    assert load_settings(env=env).policy.costly == "deny"
    assert load_settings(env=TOKEN, config=config).policy.budgets.calls == 3
    assert load_settings(env=env, costly="preview").policy.costly == "preview"
    assert load_settings(env=TOKEN).policy.costly == "confirm"


def test_numbers_and_switches_are_read_and_checked():
    env = {**TOKEN, "RELATEL_MCP_RETRIES": "5", "RELATEL_READ_TIMEOUT": "2.5", "RELATEL_MCP_KILL_SWITCH": "yes",
           "RELATEL_MCP_API_KEYS": " a-key-of-16-chars! , another-key-16chars ", "RELATEL_MCP_ALL_TOOLS": ""}  # fmt: skip
    settings = load_settings(env=env)
    assert settings.retries == 5 and settings.read_timeout == 2.5 and settings.kill_switch is True
    assert settings.remote.api_keys == ("a-key-of-16-chars!", "another-key-16chars")
    assert settings.all_tools is False  # empty counts as unset
    for name, value, says in [
        ("RELATEL_MCP_RETRIES", "11", "RELATEL_MCP_RETRIES must be between 0 and 10"),
        ("RELATEL_MCP_RATE_BURST", "many", "RELATEL_MCP_RATE_BURST must be a number, not 'many'"),
        ("RELATEL_MCP_KILL_SWITCH", "perhaps", "RELATEL_MCP_KILL_SWITCH must be true or false"),
        ("RELATEL_MCP_AUTH", "magic", "RELATEL_MCP_AUTH must be one of api-key, passthrough, oauth, none"),
    ]:
        with pytest.raises(ConfigError, match=says):
            load_settings(env={**TOKEN, name: value})


def test_a_sandbox_trial_reads_no_shared_store_or_state_directory_from_the_environment(tmp_path):
    env = {"RELATEL_MCP_STORE": "postgresql://db.example/relatel", "RELATEL_MCP_STATE_DIR": str(tmp_path),
           "RELATEL_MCP_SECRET": "s" * 32}  # fmt: skip
    trial = load_settings(env=env, sandbox=True)
    assert trial.store is None and trial.state_dir != tmp_path and trial.sandbox
    assert load_settings(env=env, sandbox=True, store="postgresql://flag.example/x").store == (
        "postgresql://flag.example/x"
    )
    assert load_settings(env={**env, **TOKEN}).store == "postgresql://db.example/relatel"


def test_the_process_environment_is_what_is_read_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RELATEL_TOKEN", "from-the-process")
    monkeypatch.setenv("RELATEL_MCP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RELATEL_MCP_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.token == "from-the-process" and settings.state_dir == tmp_path
    assert Environment.read().log_level == "warning"


def test_the_state_directory_defaults_to_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)  # conftest.py sets one for the whole run
    settings = load_settings(env={**TOKEN, "XDG_STATE_HOME": str(tmp_path)})
    assert settings.state_dir == tmp_path / "relatel-mcp"
    assert load_settings(env=TOKEN).state_dir == Path.home() / ".local" / "state" / "relatel-mcp"


def test_every_variable_is_a_field_of_the_environment_and_none_is_repeated():
    names = variables()
    assert len(names) == len(set(names)) == len(Environment.model_fields)
    assert all(name.startswith(("RELATEL_", "XDG_", "OTEL_")) for name in names)


def test_every_variable_is_documented_in_a_settings_table():
    docs = Path(__file__).resolve().parents[1] / "docs"
    tables = "".join((docs / page).read_text(encoding="utf-8") for page in ("configuration.md", "remote.md"))
    rows = [line for line in tables.splitlines() if line.startswith("|")]
    assert [name for name in variables() if not any(f"`{name}" in row for row in rows)] == []


def test_the_audit_retention_is_a_flag_else_its_variable_else_forever():
    env = {**TOKEN, "RELATEL_MCP_AUDIT_RETENTION_DAYS": "365"}
    assert load_settings(env=TOKEN).audit_retention_days == 0  # every record kept
    assert load_settings(env=env).audit_retention_days == 365
    assert load_settings(env=env, audit_retention_days=30).audit_retention_days == 30
    assert load_settings(env=env, audit_retention_days=0).audit_retention_days == 0
    with pytest.raises(ConfigError, match="RELATEL_MCP_AUDIT_RETENTION_DAYS must be between 0 and 36500"):
        load_settings(env={**TOKEN, "RELATEL_MCP_AUDIT_RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="--audit-retention-days must be between 0 and 36500"):
        load_settings(env=TOKEN, audit_retention_days=40_000)


def test_the_gates_defaults_are_the_documented_ones():
    """docs/safety.md: both kinds ask a human (`confirm`), Danish destinations only (`45`), 120 s
    for an answer, and a preview token lives 5 minutes."""
    policy = load_settings(env=TOKEN).policy
    assert (policy.costly, policy.destructive, policy.allow_prefixes) == ("confirm", "confirm", ("45",))
    assert (policy.elicit_timeout_seconds, policy.token_ttl_seconds) == (120, 300)


def test_a_metrics_token_shorter_than_16_characters_is_refused_naming_it():
    with pytest.raises(ConfigError, match="RELATEL_MCP_METRICS_TOKEN must be at least 16 characters"):
        load_settings(env={**TOKEN, "RELATEL_MCP_METRICS_TOKEN": "m" * 15})
    assert (
        load_settings(env={**TOKEN, "RELATEL_MCP_METRICS_TOKEN": "m" * 16}).remote.metrics_token == "m" * 16
    )
