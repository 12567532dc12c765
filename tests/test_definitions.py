"""Tool definitions for function calling: `relatel-mcp export` and the Toolkit's lists describe the
same tools as the MCP server's tools/list, with the same argument rules, in forms each provider
accepts (OpenAI strict mode checked by the Agents SDK's own checker, and by the rules it lacks).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from agents.strict_schema import ensure_strict_json_schema

from relatel_mcp.app import described_tools, offered
from relatel_mcp.cli import main
from relatel_mcp.core import catalog
from relatel_mcp.functions import definitions
from relatel_mcp.functions.definitions import CLEAR, CLEAR_SCHEMA, NULL, STRICT_FORMATS, STRICT_KEYWORDS
from relatel_mcp.policy import Policy
from relatel_mcp.settings import Settings

from .support import COUNT_WITHOUT_HUMAN, TOOL_COUNT, answering, connect, env, run

EXE = str(Path(sys.executable).with_name("relatel-mcp"))
OPERATIONS = {op.name: op for op in catalog.load()}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's and Anthropic's limit (Gemini's too)
POLICIES = {
    "confirm": Policy(),
    "preview": Policy(costly="preview", destructive="preview"),
    "dry_run": Policy(dry_run=True),
    "read_only": Policy(read_only=True),
}


def export(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    main(["export", *args])
    return json.loads(capsys.readouterr().out)


@pytest.fixture(autouse=True)
def _no_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELATEL_MCP_CONFIG", "RELATEL_MCP_TOOLSETS"):
        monkeypatch.delenv(name, raising=False)


def exported(policy: Policy, format: str = "openai") -> list[dict[str, Any]]:
    """What a client that can ask its user is offered, under this policy."""
    tools = offered(described_tools(Settings(policy=policy)), policy, human=True)
    return definitions.export(tools, format)


def strict_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    """Every strict schema exported, under every policy."""
    return [
        (policy, tool["function"]["name"], tool["function"]["parameters"])
        for policy, rules in POLICIES.items()
        for tool in exported(rules)
    ]


# ------------------------------------------------------------------ the same tools as tools/list


@pytest.mark.anyio
@pytest.mark.parametrize("human", [True, False])
async def test_export_mcp_is_the_tools_list_a_client_gets(sandbox, capsys, human):
    callback = {"elicitation_callback": answering()} if human else {}
    async with connect(sandbox.url, **callback) as session:
        listed = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in (await session.list_tools()).tools
        ]
    exported = export(capsys, "--format", "mcp", *(["--with-approval"] if human else []))
    assert exported == listed
    assert len(listed) == (TOOL_COUNT if human else COUNT_WITHOUT_HUMAN)


@pytest.mark.anyio
async def test_every_format_describes_the_same_tools_with_the_same_argument_rules(sandbox, capsys):
    async with connect(sandbox.url, elicitation_callback=answering()) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
    openai = export(capsys, "--format", "openai", "--with-approval")
    responses = export(capsys, "--format", "openai-responses", "--with-approval")
    anthropic = export(capsys, "--format", "anthropic", "--with-approval")
    assert [t["function"]["name"] for t in openai] == list(listed)
    assert [{"type": "function", **t["function"]} for t in openai] == responses
    assert [t["name"] for t in anthropic] == list(listed)
    for strict, loose in zip(openai, anthropic, strict=True):
        tool = listed[loose["name"]]
        assert strict["function"]["description"] == loose["description"] == tool.description
        assert strict["function"]["strict"] is True
        assert_same_rules(
            tool.input_schema, strict["function"]["parameters"], loose["input_schema"], tool.name
        )


def assert_same_rules(mcp: dict[str, Any], strict: dict[str, Any], loose: dict[str, Any], name: str) -> None:
    """Each argument: required exactly where MCP requires it (else it takes null, "not given");
    every keyword kept, `const` as a one-value enum, string lengths in words; the NULLABLE
    arguments take "clear" as in MCP, and null (not given) besides."""
    clearable = OPERATIONS[name].args.nullable_fields
    assert list(strict["properties"]) == list(loose["properties"]) == list(mcp["properties"])
    for argument, rule in mcp["properties"].items():
        if argument in clearable:
            value, clear = rule["anyOf"]
            assert clear == CLEAR_SCHEMA and isinstance(value["type"], str), (name, argument)
            assert strict["properties"][argument] == {
                "anyOf": [_strict_value(value), CLEAR_SCHEMA, NULL],
                "description": definitions.CLEAR_NOTE,
            }
            assert loose["properties"][argument] == {
                "anyOf": [value, CLEAR_SCHEMA, NULL],
                "description": definitions.CLEAR_NOTE,
            }
            continue
        value = {**rule, "type": _without_null(rule["type"])}
        assert loose["properties"][argument] == rule
        exported = strict["properties"][argument]
        optional = argument not in mcp.get("required", [])
        assert _accepts(exported, None) is optional, (name, argument)
        assert _strict_value(value) == (_without_null_value(exported) if optional else exported)
    assert {k: v for k, v in loose.items() if k != "properties"} == {
        k: v for k, v in mcp.items() if k != "properties"
    }


def _without_null(kinds: Any) -> Any:
    if not isinstance(kinds, list):
        return kinds
    (kind,) = [k for k in kinds if k != "null"]
    return kind


def _without_null_value(schema: dict[str, Any]) -> dict[str, Any]:
    stripped = {**schema, "type": _without_null(schema["type"])}
    if "enum" in schema:
        stripped["enum"] = [v for v in schema["enum"] if v is not None]
    return stripped


def _strict_value(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule as the strict form must carry it (written out here, not taken from the code)."""
    value = {k: v for k, v in rule.items() if k not in ("minLength", "maxLength", "const")}
    if "const" in rule:
        value["enum"] = [rule["const"]]
    if "items" in rule:
        value["items"] = _strict_value(rule["items"])
    low, high = rule.get("minLength"), rule.get("maxLength")
    words = f"{low} to {high} characters" if low is not None and high is not None else None
    words = words or (f"at most {high} characters" if high is not None else None)
    words = words or (f"at least {low} characters" if low is not None else None)
    if words:
        value["description"] = words
    return value


def _accepts(schema: dict[str, Any], instance: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


# ------------------------------------------------------------------ OpenAI's strict mode


@pytest.mark.parametrize(("policy", "name", "schema"), strict_parameters())
def test_every_strict_schema_passes_the_agents_sdk_check_unchanged(policy, name, schema):
    assert ensure_strict_json_schema(copy.deepcopy(schema)) == schema


def test_strict_schemas_use_only_what_strict_mode_supports():
    for _, name, schema in strict_parameters():
        for node in _nodes(schema):
            assert set(node) <= STRICT_KEYWORDS, (name, node)
            assert node.get("format", "date") in STRICT_FORMATS, (name, node)
            if node.get("type") == "object":
                assert node["additionalProperties"] is False and node["required"] == list(node["properties"])
        assert schema["type"] == "object" and "anyOf" not in schema  # the root is a plain object


def _nodes(schema: Any) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    children = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    children += [schema["items"]] if "items" in schema else []
    return [schema, *[n for child in children for n in _nodes(child)]]


def test_optional_arguments_take_null_and_required_ones_do_not():
    for _, name, schema in strict_parameters():
        required = set(OPERATIONS[name].args.input_schema().get("required", []))
        for argument, rule in schema["properties"].items():
            assert _accepts(rule, None) is (argument not in required), (name, argument)


def test_a_nullable_argument_takes_clear_null_or_its_value():
    tool = next(t for t in exported(Policy()) if t["function"]["name"] == "update_current_employee")
    timeout = tool["function"]["parameters"]["properties"]["dnd_timeout_at"]
    assert all(_accepts(timeout, value) for value in (CLEAR, None, "2026-11-27T09:30:00+01:00"))
    assert not _accepts(timeout, 5) and not _accepts(timeout, [CLEAR])


def test_names_fit_every_providers_limit_and_descriptions_are_present():
    for tool in exported(Policy(), "anthropic"):
        assert NAME.fullmatch(tool["name"]) and tool["description"].strip()


def test_a_keyword_strict_mode_lacks_is_an_error_not_a_silent_export():
    with pytest.raises(ValueError, match="uniqueItems"):
        definitions._strict({"type": "array", "items": {"type": "integer"}, "uniqueItems": True})


# ------------------------------------------------------------------ the command


def test_export_honours_toolsets_read_only_and_the_policy(capsys):
    contacts = export(capsys, "--format", "anthropic", "--toolsets", "contacts", "--with-approval")
    assert [t["name"] for t in contacts] == [op.name for op in catalog.load() if op.toolset == "contacts"]
    read_only = export(capsys, "--format", "openai", "--read-only", "--with-approval")
    assert {t["function"]["name"] for t in read_only} == {
        op.name for op in catalog.load() if op.kind == "read"
    }
    preview = export(capsys, "--format", "openai-responses", "--costly", "preview")
    call = next(t for t in preview if t["name"] == "initiate_call")  # the agent confirms: offered
    assert call["parameters"]["properties"]["confirmation_token"] == {"type": ["string", "null"]}


def test_export_as_a_command_prints_a_json_array():
    done = run(
        [EXE, "export", "--format", "openai", "--toolsets", "calls,contacts"],
        timeout=30, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    tools = json.loads(done.stdout)
    assert done.returncode == 0 and done.stderr == ""
    assert {t["function"]["name"] for t in tools} == {
        op.name for op in catalog.load() if op.toolset in ("calls", "contacts") and not op.gated
    }
    unknown = run([EXE, "export", "--format", "gemini"], env=env(), timeout=30)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
