"""The part of the Relatel API contract the server ships with: operations and response shapes.

The full contract (`contract/openapi.yaml`, 80 KB of YAML with provenance notes) is not needed at
run time. `contract.json` beside this module holds, per operationId, the method, the path, the
response media type and a compact response schema (types and field names only, and `entity`: the
contract's name for an object, e.g. "Call"), which become the tools' output schemas and say which
fields a concise result keeps (tools.yaml `concise`). Regenerate it after changing the contract:

    python -m relatel_mcp.core.contract contract/openapi.yaml
"""

from __future__ import annotations

import csv
import io
import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
# OAuth endpoints are for obtaining a token, not for agents.
EXCLUDED = frozenset({"oauthAuthorize", "oauthToken"})


@cache
def operations() -> dict[str, dict[str, Any]]:
    """operationId -> {method, path, media, response, csv_columns?}."""
    text = resources.files(__package__).joinpath("contract.json").read_text(encoding="utf-8")
    return json.loads(text)


def extract(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops: dict[str, dict[str, Any]] = {}
    for path, item in openapi["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None or op["operationId"] in EXCLUDED:
                continue
            media, content = _success_content(op)
            entry: dict[str, Any] = {"method": method.upper(), "path": path, "media": media}
            if media == "application/json" and "schema" in content:
                entry["response"] = compact(content["schema"], openapi)
            elif media == "text/csv":
                example = content.get("example", "")
                entry["csv_columns"] = next(csv.reader(io.StringIO(example)), [])
            ops[op["operationId"]] = entry
    return ops


def _success_content(op: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    response = op["responses"].get("200") or {}
    for media, content in (response.get("content") or {}).items():
        return media, content
    return None, {}


def compact(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Types and field names of a schema, with refs inlined and `oneOf [X, null]` as a type list;
    a named schema keeps its name as `entity`."""
    entity = _entity(schema)
    schema = _resolve(schema, doc)
    for key in ("allOf", "oneOf", "anyOf"):
        if key in schema:
            variants = [_resolve(v, doc) for v in schema[key]]
            nullable = any(v.get("type") == "null" for v in variants)
            concrete = [v for v in variants if v.get("type") != "null"]
            if len(concrete) != 1:
                return {}
            inner = compact(concrete[0], doc)
            return _with_null(inner) if nullable else inner
    out: dict[str, Any] = {}
    if entity is not None and "properties" in schema:
        out["entity"] = entity
    if "type" in schema:
        out["type"] = schema["type"]
    if "properties" in schema:
        out["properties"] = {name: compact(prop, doc) for name, prop in schema["properties"].items()}
    if "items" in schema:
        out["items"] = compact(schema["items"], doc)
    return out


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind is None:
        return schema
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"] if "null" not in kinds else kinds}


def _entity(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref", "")
    return ref.removeprefix("#/components/schemas/") if ref.startswith("#/components/schemas/") else None


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def main(argv: list[str]) -> None:
    import yaml

    source = Path(argv[0] if argv else "contract/openapi.yaml")
    ops = extract(yaml.safe_load(source.read_text(encoding="utf-8")))
    target = Path(__file__).with_name("contract.json")
    target.write_text(json.dumps(ops, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(ops)} operations to {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
