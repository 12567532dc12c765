"""The catalogue: tools.yaml loaded into one frozen `Operation` per tool, checked at start-up.

A mistake in tools.yaml (an unknown model, a duplicate name, a path parameter the model lacks, an
operationId the contract does not have) stops the server with a message naming the entry, rather
than surfacing as a broken tool in the middle of an agent's work.

tools.yaml is what people edit; the server reads `tools.json` beside it, the same document as
JSON, so that starting needs no YAML parser (PyYAML's import alone costs more memory and time than
the whole catalogue). After changing tools.yaml: `python -m relatel_mcp.core.catalog` (a test fails
until then).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import mcp.types as types

from . import contract
from .models import MODELS, Args
from .request import UpstreamRequest

Kind = Literal["read", "write", "destructive", "costly"]
KINDS: tuple[Kind, ...] = ("read", "write", "destructive", "costly")
REQUIREMENTS = {
    "admin": "an admin employee's token",
    "switch": "the Switch product",
    "switch_premium": "the Switch Premium plan",
    "m2m": "the separate M2M agreement",
}
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_REQUIRED_KEYS = {"name", "operation", "method", "path", "toolset", "kind", "args", "description"}
_OPTIONAL_KEYS = {"requires", "body", "list_key", "page", "verify"}
# Fields whose text people write (anyone in the company, callers, contacts' own data): a result
# carrying them says so, so that a model reads them as quoted data and never as instructions.
THIRD_PARTY_FIELDS = ("name", "endpoint_name", "email", "body", "comment", "message", "description")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
DETAIL = "detail"  # the argument that asks a list or get tool for every field
DETAILS = ("concise", "full")
INLINE = "inline"  # the argument that asks a recording tool for the audio in its result too
INLINE_SCHEMA = {"type": "boolean", "description": "true: the MP3 in the result too"}


class CatalogError(Exception):
    """tools.yaml is inconsistent; the message names the entry."""


@dataclass(frozen=True)
class Cut:
    """What a concise result keeps of an answer: of an entity (`only`), just the fields named,
    each cut further where it has a Cut of its own; of an envelope around entities, every field.
    Nulls and empty strings are left out everywhere."""

    fields: Mapping[str, Cut | None]
    only: bool = True

    def apply(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        if not isinstance(value, dict):
            return value
        pairs = ((name, value.get(name)) for name in self.fields) if self.only else value.items()
        out = {}
        for name, item in pairs:
            if not _empty(item):
                cut = self.fields.get(name)
                out[name] = cut.apply(item) if cut is not None else without_nulls(item)
        return out


def _empty(value: Any) -> bool:
    return value is None or value == ""


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if not _empty(v)}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


@dataclass(frozen=True)
class Paging:
    """How to ask for the next page: `param` = the last item's `field` + `step`."""

    param: str
    field: str
    step: int = 0


@dataclass(frozen=True)
class Operation:
    name: str
    operation: str
    method: str
    path: str
    toolset: str
    kind: Kind
    args: type[Args]
    description: str
    requires: tuple[str, ...] = ()
    body: str | None = None
    list_key: str | None = None
    page: Paging | None = None
    verify: str | None = None  # the read tool that shows whether a call whose answer was lost happened
    media: str | None = None
    response: dict[str, Any] | None = field(default=None, repr=False)
    csv_columns: tuple[str, ...] = ()
    output_schema: dict[str, Any] | None = field(default=None, repr=False)
    cut: Cut | None = field(default=None, repr=False)  # a list or get tool's concise result; None: one form

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @cached_property
    def third_party_fields(self) -> tuple[str, ...]:
        """The people-written text fields this tool's results carry (from the contract's shape).

        A response that is nothing but a `message` is the API's own status line, not people's."""
        return _third_party(self.response or {})

    @cached_property
    def concise_third_party_fields(self) -> tuple[str, ...]:
        """The same, of a concise result."""
        if self.cut is None or self.response is None:
            return self.third_party_fields
        response = {"properties": {self.list_key: self.response}} if self.list_key else self.response
        return _third_party(cut_shape(self.cut, response))

    @property
    def gated(self) -> bool:
        """Costly and destructive tools need a human's yes before anything is sent."""
        return self.kind in ("costly", "destructive")

    @property
    def idempotent(self) -> bool:
        """Repeating it changes nothing more: safe to retry. Never true of a costly action."""
        return self.kind != "costly" and self.method != "POST"

    @property
    def annotations(self) -> types.ToolAnnotations:
        # Every hint is set explicitly: clients decide what to prompt for from them, and an
        # unset readOnlyHint makes some ask for approval on every read.
        return types.ToolAnnotations(
            read_only_hint=self.kind == "read",
            destructive_hint=self.gated,
            idempotent_hint=self.idempotent,
            # Reads and writes stay inside the company's account; calls, SMS and orders reach
            # people and systems outside it.
            open_world_hint=self.kind == "costly",
        )

    def request(self, args: Args) -> UpstreamRequest:
        """The contract's request: path parameters filled in, the rest as query or (wrapped) body."""
        data = args.upstream_fields()
        path = self.path.format(**{name: quote(str(data.pop(name)), safe="") for name in self.path_params})
        if self.method in ("GET", "DELETE"):
            return UpstreamRequest(self.method, path, params=tuple(_query_pairs(data)))
        body = {self.body: data} if self.body else data
        return UpstreamRequest(self.method, path, json=body or None)

    def tool(self, *, confirmation: bool = False, output: bool = True) -> types.Tool:
        """The MCP tool; `confirmation` adds the preview-token argument, `output` the output schema.
        A tool with a concise form takes `detail`."""
        schema = self.args.input_schema()
        extra: dict[str, Any] = {DETAIL: {"type": "string", "enum": list(DETAILS)}} if self.cut else {}
        if self.media == "audio/mpeg":
            extra[INLINE] = INLINE_SCHEMA
        if confirmation:
            extra["confirmation_token"] = {"type": "string"}
        if extra:
            schema = {**schema, "properties": {**schema["properties"], **extra}}
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=schema,
            output_schema=self.output_schema if output else None,
            annotations=self.annotations,
        )


def _query_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
    return pairs


def unknown_tool(name: str, operations: Mapping[str, Operation]) -> str:
    """What to tell a caller who named no tool of this server, with the names it may have meant."""
    import difflib  # only for a mistyped tool

    close = difflib.get_close_matches(name, operations, n=3)
    suggestion = f" Did you mean {', '.join(close)}?" if close else ""
    return f"Unknown tool {name[:80]!r}.{suggestion} The tool list shows the tools this server offers."


def named(operation: str) -> Operation:
    """The catalogue's tool for a contract operationId."""
    return next(op for op in load() if op.operation == operation)


def _third_party(response: dict[str, Any]) -> tuple[str, ...]:
    found = _string_fields(response) if set(response.get("properties", {})) != {"message"} else set()
    return tuple(name for name in THIRD_PARTY_FIELDS if name in found)


def _string_fields(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name, prop in schema.get("properties", {}).items():
        if "string" in (prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")]):
            found.add(name)
        found |= _string_fields(prop)
    return found | (_string_fields(schema["items"]) if "items" in schema else set())


def cut_shape(cut: Cut, schema: dict[str, Any]) -> dict[str, Any]:
    """The contract's shape of an answer as a Cut leaves it."""
    if "items" in schema:
        return {**schema, "items": cut_shape(cut, schema["items"])}
    properties = schema.get("properties", {})
    kept = [name for name in (cut.fields if cut.only else properties) if name in properties]
    inner = {name: properties[name] for name in kept}
    for name in kept:
        if (sub := cut.fields.get(name)) is not None:
            inner[name] = cut_shape(sub, properties[name])
    return {**schema, "properties": inner}


def output_schemas(operations: tuple[Operation, ...]) -> dict[str, dict[str, Any] | None]:
    """Each tool's output schema: types and field names, with each entity spelled out once.

    The entity a tool returns (a call, an employee) is found below its envelope (`{"calls": [..]}`,
    `{"contact": {..}}`). Its fields and their types are given in the first tool that returns it,
    reads and lists first; every other tool returning the same entity types it as an object. Of an
    entity with a concise form, the concise fields are given, and a description names the fields
    `detail: full` adds. Nested objects are typed, not spelled out, and below the root
    `type: object` is left out beside `properties`. This keeps the whole tools/list small enough
    for an agent's context while every field name still appears in it.
    """
    described: set[str] = set()
    schemas = {
        op.name: _output_schema(op, described)
        for op in sorted(operations, key=lambda op: (op.kind != "read", not _is_list(op)))
    }
    return {op.name: schemas[op.name] for op in operations}


def _is_list(op: Operation) -> bool:
    response = op.response or {}
    return any(v.get("type") == "array" for v in [response, *response.get("properties", {}).values()])


def _output_schema(op: Operation, described: set[str]) -> dict[str, Any] | None:
    if op.csv_columns:
        row = {"properties": {c: {"type": "string"} for c in op.csv_columns}}
        return {"type": "object", "properties": {"rows": {"type": "array", "items": row}}}
    if op.response is None:
        return None
    cut = op.cut.fields[op.list_key] if op.cut and op.list_key else op.cut
    schema = _untyped_objects(_shape(op.response, described, cut))
    if op.list_key:
        schema = {"properties": {op.list_key: schema}}
    if op.page is not None:
        schema = {"properties": {**schema["properties"], "next_page": {"type": "object"}}}
    return {"type": "object", **{k: v for k, v in schema.items() if k != "type"}}


def _shape(schema: dict[str, Any], described: set[str], cut: Cut | None) -> dict[str, Any]:
    schema = {k: v for k, v in schema.items() if k != "entity"}
    items = schema.get("items", {})
    if "properties" in items:  # a list of entities
        return {**schema, "items": _shape(items, described, cut)}
    properties = schema.get("properties", {})
    if len(properties) == 1 and not (cut and cut.only):  # an envelope such as {"contact": {...}}
        ((key, inner),) = properties.items()
        if "properties" in inner or "properties" in inner.get("items", {}):
            return {**schema, "properties": {key: _shape(inner, described, cut and cut.fields.get(key))}}
    if not properties:
        return schema
    entity = _entity_key(schema)
    if entity in described:
        return {"type": schema.get("type", "object")}
    described.add(entity)
    if cut is None or not cut.only:
        return {**schema, "properties": {name: _leaf(prop) for name, prop in properties.items()}}
    shown = {name: _leaf(properties[name]) for name in cut.fields if name in properties}
    more = [name for name in properties if name not in shown]
    return {**schema, "properties": shown, "description": f"{DETAIL} full adds: {', '.join(more)}"}


def _entity_key(schema: dict[str, Any]) -> str:
    """What makes two shapes the same entity: their field names (the contract's entity names are
    gone by here, and a shape such as {message} is one thing whichever tool returns it)."""
    return ",".join(sorted(schema.get("properties", {})))


def _leaf(schema: dict[str, Any]) -> dict[str, Any]:
    """A field of an entity: its type, and its item type when it is a list of scalars.

    A field Relatel may return as null is `anyOf` one-type branches, never a `type` array: both
    are JSON Schema every validator takes, but strict linters (the MCP Inspector's --strict) warn
    about type arrays, which clients that map schemas onto one-type dialects may reject; and
    leaving `type` out would be warned about too (a schema that constrains nothing) and would
    tell a client less."""
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return {"anyOf": [{"type": kind} for kind in kinds]}
    leaf = {k: v for k, v in schema.items() if k == "type"}
    items = schema.get("items")
    if items is not None and "properties" not in items and "items" not in items:
        leaf["items"] = items
    return leaf


def _untyped_objects(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if not (k == "type" and v == "object" and "properties" in schema)}
    if "properties" in out:
        out["properties"] = {k: _untyped_objects(v) for k, v in out["properties"].items()}
    if "items" in out:
        out["items"] = _untyped_objects(out["items"])
    return out


# ------------------------------------------------------------------------------ concise forms


def concise_cuts(document: dict[str, Any]) -> dict[str, Cut]:
    """tools.yaml `concise`: per contract entity, the fields a concise result keeps, a nested
    entity as `{field: [its fields]}`."""
    specs = document.get("concise", {})
    if not isinstance(specs, dict):
        raise CatalogError("tools.yaml: concise must map entity names to field lists")
    return {entity: _cut_of(entity, fields) for entity, fields in specs.items()}


def _cut_of(entity: str, fields: Any) -> Cut:
    if not isinstance(fields, list) or not fields:
        raise CatalogError(f"tools.yaml concise {entity}: expected a list of fields")
    kept: dict[str, Cut | None] = {}
    for item in fields:
        if isinstance(item, str):
            kept[item] = None
        elif isinstance(item, dict) and len(item) == 1:
            ((name, inner),) = item.items()
            kept[name] = _cut_of(f"{entity}.{name}", inner)
        else:
            raise CatalogError(f"tools.yaml concise {entity}: {item!r} is not a field name")
    return Cut(kept)


def _cut_for(schema: dict[str, Any], cuts: dict[str, Cut]) -> Cut | None:
    """The Cut of an answer of this shape: the concise form of each entity with one, kept inside
    its envelopes; None when nothing in it has a concise form."""
    if "items" in schema:
        return _cut_for(schema["items"], cuts)
    if (cut := cuts.get(schema.get("entity", ""))) is not None:
        return cut
    inner = {name: _cut_for(prop, cuts) for name, prop in schema.get("properties", {}).items()}
    return Cut(inner, only=False) if any(inner.values()) else None


def _check_cut(label: str, cut: Cut, schema: dict[str, Any]) -> None:
    """Every field a concise form names is one the contract's entity has."""
    schema = schema.get("items", schema)
    properties = schema.get("properties", {})
    for name, sub in cut.fields.items():
        if name not in properties:
            raise CatalogError(f"tools.yaml concise {label}: the contract's entity has no field {name!r}")
        if sub is not None:
            _check_cut(f"{label}.{name}", sub, properties[name])


def _entities(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every named entity in a contract shape, by name."""
    found = {schema["entity"]: schema} if "entity" in schema else {}
    for sub in [*schema.get("properties", {}).values(), *([schema["items"]] if "items" in schema else [])]:
        found.update(_entities(sub))
    return found


@cache
def load() -> tuple[Operation, ...]:
    return parse(json.loads(resources.files(__package__).joinpath("tools.json").read_text(encoding="utf-8")))


def from_yaml(text: str) -> dict[str, Any]:
    """tools.yaml as the document `parse` takes (PyYAML, a development dependency)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"tools.yaml is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise CatalogError("tools.yaml: expected a mapping with 'tools'")
    return document


def main() -> None:
    """Check tools.yaml and write it as tools.json, which the server reads."""
    here = Path(__file__).parent
    document = from_yaml((here / "tools.yaml").read_text(encoding="utf-8"))
    print(f"{len(parse(document))} tools checked", file=sys.stderr)
    (here / "tools.json").write_text(
        json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {here / 'tools.json'}", file=sys.stderr)


def parse(document: dict[str, Any]) -> tuple[Operation, ...]:
    entries = document.get("tools") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CatalogError("tools.yaml: expected a non-empty list under 'tools'")
    cuts = concise_cuts(document)
    entities: dict[str, dict[str, Any]] = {}
    for spec in contract.operations().values():
        entities.update(_entities(spec.get("response", {})))
    for entity, cut in cuts.items():
        if entity not in entities:
            raise CatalogError(f"tools.yaml concise: {entity!r} is no entity of the contract")
        _check_cut(entity, cut, entities[entity])
    operations: list[Operation] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        op = _operation(index, entry, cuts)
        if op.name in seen:
            raise CatalogError(f"tools.yaml entry {index} ({op.name}): duplicate tool name")
        seen.add(op.name)
        operations.append(op)
    for index, op in enumerate(operations):
        if op.verify is not None and op.verify not in seen:
            raise CatalogError(f"tools.yaml entry {index} ({op.name}): verify names no tool: {op.verify!r}")
        if op.method == "POST" and op.verify is None:
            raise CatalogError(
                f"tools.yaml entry {index} ({op.name}): a POST needs verify (how to check a lost answer)"
            )
    outputs = output_schemas(tuple(operations))
    return tuple(replace(op, output_schema=outputs[op.name]) for op in operations)


def _operation(index: int, entry: Any, cuts: dict[str, Cut]) -> Operation:
    label = f"tools.yaml entry {index}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{label}: expected a mapping")
    label = f"{label} ({entry.get('name', '?')})"

    def fail(problem: str) -> CatalogError:
        return CatalogError(f"{label}: {problem}")

    missing = _REQUIRED_KEYS - entry.keys()
    unknown = entry.keys() - _REQUIRED_KEYS - _OPTIONAL_KEYS
    if missing or unknown:
        raise fail(f"missing keys {sorted(missing)}" if missing else f"unknown keys {sorted(unknown)}")
    if not _NAME.fullmatch(str(entry["name"])):
        raise fail("name must be snake_case")
    spec = contract.operations().get(entry["operation"])
    if spec is None:
        raise fail(f"operation {entry['operation']!r} is not an operationId of the contract")
    if entry["method"] not in _METHODS:
        raise fail(f"method must be one of {', '.join(_METHODS)}")
    if entry["kind"] not in KINDS:
        raise fail(f"kind must be one of {', '.join(KINDS)}")
    model = MODELS.get(entry["args"])
    if model is None:
        raise fail(f"unknown args model {entry['args']!r}")
    requires = tuple(entry.get("requires", ()))
    if unknown_req := set(requires) - REQUIREMENTS.keys():
        raise fail(f"unknown requirements {sorted(unknown_req)}")
    page = Paging(**entry["page"]) if "page" in entry else None
    response = spec.get("response")
    # Only reads have a concise form: what a write answers is what it did, in full.
    cut = _cut_for(response, cuts) if response and entry["kind"] == "read" else None
    if cut is not None and entry.get("list_key"):
        cut = Cut({entry["list_key"]: cut}, only=False)
    op = Operation(
        name=entry["name"],
        operation=entry["operation"],
        method=entry["method"],
        path=entry["path"],
        toolset=entry["toolset"],
        kind=entry["kind"],
        args=model,
        description=" ".join(str(entry["description"]).split()),
        requires=requires,
        body=entry.get("body"),
        list_key=entry.get("list_key"),
        page=page,
        verify=entry.get("verify"),
        media=spec.get("media"),
        response=response,
        csv_columns=tuple(spec.get("csv_columns", ())),
        cut=cut,
    )
    if lacking := [p for p in op.path_params if p not in model.model_fields]:
        raise fail(f"path parameters {lacking} are not fields of {model.__name__}")
    if page is not None and page.param not in model.model_fields:
        raise fail(f"page parameter {page.param!r} is not a field of {model.__name__}")
    if op.response is not None and op.response.get("type") == "array" and not op.list_key:
        raise fail("the response is a bare array: give list_key")
    return op


if __name__ == "__main__":
    main()
