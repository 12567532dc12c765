"""Tool definitions for function-calling APIs, made from the same tools as tools/list, and the
arguments a model sends back, read the way the pipeline reads MCP arguments.

    format            one entry
    openai            Chat Completions: {"type": "function", "function": {name, description,
                      parameters, "strict": true}}
    openai-responses  Responses: {"type": "function", name, description, parameters, "strict": true}
    anthropic         Messages: {name, description, input_schema}
    mcp               the tools/list entry itself

OpenAI's strict mode decodes arguments against the schema, so it accepts only a subset of JSON
Schema: every object is closed (`additionalProperties: false`) and lists every property as
required, an optional argument takes `null` (which this server reads as "not given"), and only
the keywords strict mode supports appear (`const` becomes an `enum`); the server checks every
argument anyway.

Function calling has one rule for `null`: it is "not given", for every argument. (A strict model
must send every argument, so `null` cannot also mean "clear it".) The two arguments that clear a
setting (NULLABLE: when do-not-disturb ends, and the caller-id reception) take the word "clear",
as in the MCP input schemas, which is sent upstream as `null`. Tool names are catalogue names, `[a-z][a-z0-9_]{0,63}`,
within every provider's limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mcp.types as types

from ..core.catalog import Operation
from ..core.errors import ToolError
from ..core.models.common import CLEAR, CLEAR_SCHEMA

CLEAR_NOTE = f'null leaves it as it is; "{CLEAR}" clears it'
NULL = {"type": "null"}
# What strict mode accepts (platform.openai.com/docs/guides/structured-outputs, "Supported schemas").
STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "anyOf",
        "description", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
    }
)  # fmt: skip
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


# ------------------------------------------------------------------------------ definitions


def openai(op: Operation, tool: types.Tool) -> dict[str, Any]:
    return {"type": "function", "function": _strict_function(op, tool)}


def openai_responses(op: Operation, tool: types.Tool) -> dict[str, Any]:
    return {"type": "function", **_strict_function(op, tool)}


def anthropic(op: Operation, tool: types.Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": loose_schema(op, tool)}


def mcp(op: Operation, tool: types.Tool) -> dict[str, Any]:
    return tool.model_dump(mode="json", by_alias=True, exclude_none=True)


FORMATS: dict[str, Callable[[Operation, types.Tool], dict[str, Any]]] = {
    "openai": openai,
    "openai-responses": openai_responses,
    "anthropic": anthropic,
    "mcp": mcp,
}


def export(tools: Iterable[tuple[Operation, types.Tool]], format: str) -> list[dict[str, Any]]:
    return [FORMATS[format](op, tool) for op, tool in tools]


def _strict_function(op: Operation, tool: types.Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "parameters": strict_schema(op, tool),
        "strict": True,
    }


def loose_schema(op: Operation, tool: types.Tool) -> dict[str, Any]:
    """The MCP input schema in the function-calling rule for `null` (for non-strict formats)."""
    properties = {
        name: _clearable(prop) if name in op.args.nullable_fields else prop
        for name, prop in tool.input_schema["properties"].items()
    }
    return {**tool.input_schema, "properties": properties}


def strict_schema(op: Operation, tool: types.Tool) -> dict[str, Any]:
    """The MCP input schema in OpenAI's strict form (see the module's docstring)."""
    return _strict_object(tool.input_schema, op.args.nullable_fields)


def _strict_object(schema: Mapping[str, Any], clearable: frozenset[str] = frozenset()) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return {
        "type": "object",
        "properties": {
            name: _strict_property(prop, required=name in required, clearable=name in clearable)
            for name, prop in properties.items()
        },
        "required": list(properties),
        "additionalProperties": False,
    }


def _strict_property(schema: Mapping[str, Any], *, required: bool, clearable: bool) -> dict[str, Any]:
    if clearable:
        return _clearable(schema, _strict)
    return _strict(schema) if required else _or_null(_strict(schema))


def _strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One value's schema in the keywords strict mode supports. A keyword (or format) without a
    rule here is an error, so that a new one in the catalogue is noticed rather than exported."""
    if schema.get("type") == "object":
        return _strict_object(schema)
    strict: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "const":
            strict["enum"] = [value]
        elif key == "items":
            strict["items"] = _strict(value)
        elif key in STRICT_KEYWORDS and (key != "format" or value in STRICT_FORMATS):
            strict[key] = value
        else:
            raise ValueError(f"no strict form for the JSON Schema keyword {key}: {value!r}")
    return strict


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The same value or `null` (not given)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    nullable = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        nullable["enum"] = [*schema["enum"], None]
    return nullable


def _clearable(
    schema: Mapping[str, Any], form: Callable[[Mapping[str, Any]], dict[str, Any]] = dict
) -> dict[str, Any]:
    """A NULLABLE argument (in MCP: its value or "clear"): its value, "clear", or null (not given)."""
    value, _ = schema["anyOf"]
    return {"anyOf": [form(value), CLEAR_SCHEMA, NULL], "description": CLEAR_NOTE}


# ------------------------------------------------------------------------------ arguments


def arguments(op: Operation, given: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A model's arguments (an object, or the JSON text of one) as the pipeline reads them:
    a NULLABLE argument's null is dropped (not given); its "clear" is read as in MCP."""
    parsed = _parse(op, given) if isinstance(given, str) else dict(given or {})
    for name in op.args.nullable_fields & parsed.keys():
        if parsed[name] is None:
            del parsed[name]
    return parsed


def _parse(op: Operation, text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text or "{}")
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: they must be one JSON object. Nothing was sent.",
            hint="Send the arguments as a JSON object matching the tool's parameters.",
        )
    return parsed
