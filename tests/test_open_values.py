"""Issue 19, points 6 and 7, through a real MCP client against the sandbox over HTTP.

6. Every schema in tools/list is one strict clients take: no `type` arrays and nothing untyped,
   by the rules of the MCP Inspector's `--strict` lint (scripts/interop.py runs the Inspector
   itself in CI); "clear" clears a setting and is sent upstream as null.
7. Values the contract leaves open reach Relatel, which judges them: its refusal is an upstream
   error, never this server's invalid_argument.
"""

from __future__ import annotations

from typing import Any

import pytest

from relatel_mcp.policy import Policy

from .support import ALLOW, MODES, connect, error_of

pytestmark = pytest.mark.anyio

# The keywords that make a schema constrain something, as the Inspector's lint counts them
# (@modelcontextprotocol/inspector 2.12.0, core/json/schemaLint.ts: CONSTRAINING_KEYWORDS).
CONSTRAINING = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "contentMediaType", "contentEncoding", "contentSchema",
    "maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties",
    "required", "dependentRequired", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains",
    "additionalItems", "unevaluatedItems", "properties", "patternProperties", "additionalProperties",
    "unevaluatedProperties", "propertyNames", "dependentSchemas", "dependencies", "$ref",
}  # fmt: skip


def findings(schema: Any, path: str = "") -> list[str]:
    """What the Inspector's --strict would report: type arrays, boolean and untyped schemas."""
    if isinstance(schema, bool):
        return [f"{path}: a boolean schema"]
    found = []
    if isinstance(schema.get("type"), list):
        found.append(f"{path}: type {schema['type']}")
    if not CONSTRAINING & set(schema):
        found.append(f"{path}: constrains nothing")
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            found += findings(sub, f"{path}.{key}.{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key, [])):
            found += findings(sub, f"{path}.{key}[{index}]")
    if "items" in schema:
        found += findings(schema["items"], f"{path}.items")
    return found


@pytest.mark.parametrize("mode", MODES)
async def test_every_schema_is_one_strict_clients_take(sandbox, mode):
    """Every tool, the gated ones with their confirmation_token (the operator's preview opt-in)."""
    policy = Policy(costly="preview", destructive="preview")
    async with connect(sandbox.url, mode=mode, policy=policy) as session:
        tools = (await session.list_tools()).tools
    assert len(tools) == 53
    problems = [
        f"{tool.name} {kind}{problem}"
        for tool in tools
        for kind, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema or {}))
        for problem in findings(schema)
        if schema
    ]
    assert problems == []
    employee = next(t for t in tools if t.name == "update_current_employee").input_schema["properties"]
    assert employee["cloak_reception_id"]["anyOf"] == [
        {"type": "integer"},
        {"type": "string", "enum": ["clear"]},
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_clear_clears_and_is_sent_upstream_as_null(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        await session.list_tools()
        set_both = {"dnd_timeout_at": "2026-11-28T08:00:00+01:00", "cloak_reception_id": 2}
        result = await session.call_tool("update_employee", {"id": 4, **set_both})
        assert not result.is_error, result.content[0].text
        sandbox.clear_requests()
        result = await session.call_tool(
            "update_employee", {"id": 4, "dnd_timeout_at": "clear", "cloak_reception_id": "clear"}
        )
        assert not result.is_error, result.content[0].text
        sent = sandbox.requests()
        full = await session.call_tool("get_employee", {"id": 4, "detail": "full"})
    assert [(r["method"], r["path"], r["body"]) for r in sent] == [
        ("PUT", "/api/v2/employees/4", {"employee": {"dnd_timeout_at": None, "cloak_reception_id": None}})
    ]
    employee = full.structured_content["employee"]  # null fields pass the output schema's anyOf
    assert employee["dnd_timeout_at"] is None and employee["cloak_reception"] is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("tool", "args", "query"),
    [
        ("get_statistics", {"endpoint_type": "reception", "group_by": "day", "start": "2026-11-01", "end": "2026-11-20"},
         {"endpoint_type": ["reception"], "group_by": ["day"], "start": ["2026-11-01"], "end": ["2026-11-20"]}),
        ("get_statistics", {"endpoint_type": "reception", "group_by": "date", "start": "2026-11-20", "end": "2026-11-01"},
         {"endpoint_type": ["reception"], "group_by": ["date"], "start": ["2026-11-20"], "end": ["2026-11-01"]}),
        ("list_smileys", {"rating": 7}, {"rating": ["7"]}),
        ("list_calls", {"status": "transferred"}, {"status": ["transferred"]}),
    ],
)  # fmt: skip
async def test_a_value_the_contract_leaves_open_reaches_relatel_which_judges_it(
    sandbox, mode, tool, args, query
):
    """The sandbox knows only some values, as Relatel may; its refusal is an upstream 422."""
    async with connect(sandbox.url, mode=mode, policy=ALLOW) as session:
        await session.list_tools()
        sandbox.clear_requests()
        result = await session.call_tool(tool, args)
        sent = sandbox.requests()
    assert [(r["method"], r["query"]) for r in sent] == [("GET", query)]
    if result.is_error:
        error = error_of(result)
        assert error["code"] != "invalid_argument" and error["status"] == 422, error
