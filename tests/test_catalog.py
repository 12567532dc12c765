"""The catalogue covers the whole contract, matches it, and refuses to start when it is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import anyio
import pytest
import yaml

from relatel_mcp.core import catalog, contract
from relatel_mcp.core.catalog import CatalogError

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "contract" / "openapi.yaml"


@pytest.fixture(scope="module")
def openapi() -> dict:
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


@pytest.fixture()
def document() -> dict:
    return yaml.safe_load((ROOT / "relatel_mcp" / "core" / "tools.yaml").read_text(encoding="utf-8"))


def contract_operations(openapi: dict) -> dict[str, tuple[str, str]]:
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in openapi["paths"].items()
        for method, op in item.items()
        if method in contract.METHODS and op["operationId"] not in contract.EXCLUDED
    }


def test_every_contract_operation_is_exactly_one_tool(openapi):
    ops = contract_operations(openapi)
    tools = catalog.load()
    assert len(ops) == len(tools)
    assert sorted(op.operation for op in tools) == sorted(ops)
    assert len({op.name for op in tools}) == len(tools)


def test_tools_use_the_contracts_method_and_path(openapi):
    ops = contract_operations(openapi)
    assert {op.operation: (op.method, op.path) for op in catalog.load()} == ops


def test_shipped_contract_extract_is_up_to_date(openapi):
    shipped = json.loads((ROOT / "relatel_mcp" / "core" / "contract.json").read_text(encoding="utf-8"))
    assert shipped == contract.extract(openapi), "run: .venv/bin/python scripts/regenerate.py"


def test_shipped_catalogue_is_tools_yaml_as_json(document):
    shipped = json.loads((ROOT / "relatel_mcp" / "core" / "tools.json").read_text(encoding="utf-8"))
    assert shipped == document, "run: .venv/bin/python scripts/regenerate.py"


def test_every_tool_sets_all_four_hints_from_its_kind():
    for op in catalog.load():
        hints = op.tool().annotations.model_dump(by_alias=True, exclude_none=True)
        assert set(hints) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}, op.name
        assert hints["readOnlyHint"] == (op.kind == "read"), op.name
        assert hints["destructiveHint"] == (op.kind in ("destructive", "costly")), op.name
        if op.kind == "costly":
            assert hints["idempotentHint"] is False and hints["openWorldHint"] is True, op.name


def test_costly_and_destructive_kinds_cover_money_and_loss():
    kinds = {op.name: op.kind for op in catalog.load()}
    assert {n for n, k in kinds.items() if k == "costly"} == {
        "initiate_call",
        "send_employee_sms",
        "send_employee_group_sms",
        "order_m2m_activation",
        "order_m2m_cancellation",
        "order_m2m_product_change",
        "order_subscription_cancellation",
    }
    assert all(kinds[n] == "destructive" for n in kinds if n.startswith("delete_"))
    assert kinds["leave_employee_group"] == "destructive"
    assert all(k == "read" for n, k in kinds.items() if n.startswith(("list_", "get_", "find_", "download_")))


NOISE = ("title", "anyOf", "$defs", "additionalProperties", "minLength", "maxLength", "minimum", "maximum",
         "minItems", "maxItems", "default")  # fmt: skip


def test_input_schemas_are_compact():
    """No generated titles or unions, nothing that only mirrors the API's limits or the validation;
    one `type` per property, and `anyOf` only where "clear" is a value (a NULLABLE argument)."""
    for op in catalog.load():
        schema = op.tool().input_schema
        assert schema["type"] == "object", op.name
        properties = dict(schema["properties"])  # a copy: the schema is the tool's own
        clearable = {name: properties.pop(name) for name in op.args.nullable_fields}
        schema = {**schema, "properties": properties}
        assert not _schema_keywords(schema) & set(NOISE), (op.name, _schema_keywords(schema) & set(NOISE))
        assert set(schema.get("required", [])) >= set(op.path_params), op.name
        assert all(isinstance(node.get("type", ""), str) for node in _nodes(schema)), op.name
        for name, prop in clearable.items():
            value, clear = prop["anyOf"]
            assert set(prop) == {"anyOf", "description"} and "clear:" in prop["description"], (op.name, name)
            assert clear == {"type": "string", "enum": ["clear"]} and isinstance(value["type"], str), op.name


def _nodes(schema: dict) -> list[dict]:
    children = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    children += [schema["items"]] if "items" in schema else []
    return [schema, *[node for child in children for node in _nodes(child)]]


def _properties(kind: str) -> list[tuple[str, str, dict]]:
    """(tool, argument, schema) of every argument of the models' value type `kind`."""
    found = []
    for op in catalog.load():
        for name, field in op.args.model_fields.items():
            if kind in repr(field.annotation) or any(kind in repr(m) for m in field.metadata):
                found.append((op.name, name, op.tool().input_schema["properties"][name]))
    return found


def test_arguments_say_their_format_with_an_example():
    phones = [(tool, name, prop.get("items", prop)) for tool, name, prop in _properties("normalize")]
    endpoints = [(tool, name, prop) for tool, name, prop in _properties("Reception#1 or Employee#7")]
    assert len(phones) >= 12 and len(endpoints) >= 6
    for tool, name, prop in phones:
        assert prop["description"] == "e.g. +45 28 11 44 77", (tool, name)
    for tool, name, prop in endpoints:
        assert "Reception#1 or Employee#7" in prop["description"], (tool, name)
    tools = {op.name: op.tool().input_schema["properties"] for op in catalog.load()}
    for tool, name in [("initiate_call", "restrict_to"), ("initiate_call", "cloak_reception_id"),
                       ("update_employee", "cloak_reception_id"), ("update_employee", "dnd_timeout_at"),
                       ("get_reception_statistics", "phase"), ("get_reception_statistics", "answer_target"),
                       ("list_smileys", "rating"), ("list_contacts", "id_gt_or_eq")]:  # fmt: skip
        assert tools[tool][name].get("description"), (tool, name)
    assert "seconds" in tools["get_reception_statistics"]["answer_target"]["description"]


def test_sets_the_contract_closes_are_enums_and_open_ones_are_examples():
    """An enum only where the contract lists the values; where it leaves them open (`any`, or a
    string), the known ones are examples in the description and the schema refuses none."""
    tools = {op.name: op.tool().input_schema["properties"] for op in catalog.load()}
    assert tools["get_reception_statistics"]["phase"]["items"]["enum"] == ["open", "closed", "backup"]
    assert tools["initiate_call"]["restrict_to"]["enum"] == ["web_call", "mobile", ""]
    assert tools["list_calls"]["direction"]["enum"] == ["incoming", "outgoing"]
    for tool, name, known in [("get_statistics", "endpoint_type", ["reception", "employee"]),
                              ("get_statistics", "group_by", ["date", "endpoint"]),
                              ("list_calls", "status", ["missed", "answered", "voicemail", "new", "ringing", "orphaned"]),
                              ("list_smileys", "rating", ["0", "1"])]:  # fmt: skip
        prop = tools[tool][name]
        assert "enum" not in prop and isinstance(prop["type"], str), (tool, name)
        assert all(value in prop["description"] for value in known), (tool, name)
    enums = {(tool, name) for tool, props in tools.items() for name, p in props.items() if "enum" in p}
    assert {name for _, name in enums} == {"direction", "restrict_to", "detail"}


def test_list_and_get_tools_take_detail_where_a_concise_form_leaves_something_out():
    with_detail = {op.name for op in catalog.load() if "detail" in op.tool().input_schema["properties"]}
    assert with_detail >= {"list_calls", "get_call", "list_contacts", "get_contact", "list_voicemails",
                           "list_messages", "list_chats", "list_smileys", "list_employees"}  # fmt: skip
    for op in catalog.load():
        if op.name in with_detail:
            assert op.kind == "read" and op.tool().input_schema["properties"]["detail"]["enum"] == [
                "concise",
                "full",
            ]


def _schema_keywords(schema: dict) -> set[str]:
    keywords = set(schema) - {"properties"}
    subs = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    for sub in [*subs, *([schema["items"]] if "items" in schema else [])]:
        keywords |= _schema_keywords(sub)
    return keywords


def test_output_schemas_are_types_and_names_only():
    for op in catalog.load():
        if op.output_schema is not None:
            assert op.output_schema["type"] == "object", op.name
            assert _schema_keywords(op.output_schema) <= {"type", "items", "description", "anyOf"}, op.name
            assert all(isinstance(node.get("type", ""), str) for node in _nodes(op.output_schema)), op.name


def test_output_fields_relatel_may_return_as_null_are_one_type_branches():
    """A field the contract types as a value or null: `anyOf` one-type branches (never a type
    array, never untyped), and results.py's check takes both branches."""
    from relatel_mcp.core.results import mismatch

    ops = {op.name: op for op in catalog.load()}
    employee = ops["list_employees"].output_schema["properties"]["employees"]["items"]
    assert employee["properties"]["dnd_timeout_at"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert employee["properties"]["name"] == {"type": "string"}
    subscription = ops["get_m2m_subscription"].output_schema
    assert subscription["properties"]["cancelled_on"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert mismatch(subscription, {"cancelled_on": None}) is None
    assert mismatch(subscription, {"cancelled_on": "2026-12-01"}) is None
    assert mismatch(subscription, {"cancelled_on": 5}) == (
        ("cancelled_on",),
        "int where string or null was expected",
    )


def test_output_schemas_say_what_each_mode_returns():
    """An entity with a concise form: its concise fields typed, and the fields `detail: full` adds named."""
    calls = {op.name: op for op in catalog.load()}["list_calls"].output_schema["properties"]["calls"]["items"]
    shown, described = set(calls["properties"]), calls["description"]
    contract_fields = set(
        contract.operations()["getCalls"]["response"]["properties"]["calls"]["items"]["properties"]
    )
    added = set(described.removeprefix("detail full adds: ").split(", "))
    assert shown | added == contract_fields and not shown & added
    assert {"call_uuid", "remote_number", "status", "started_at"} <= shown and "nodes" in added


def _fails(document: dict, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        catalog.parse(document)


def test_unknown_model_stops_start_up_naming_the_entry(document):
    document["tools"][3]["args"] = "NoSuchModel"
    _fails(document, r"entry 3 \(create_contact\): unknown args model 'NoSuchModel'")


def test_duplicate_name_stops_start_up(document):
    document["tools"][1]["name"] = document["tools"][0]["name"]
    _fails(document, r"entry 1 \(list_contacts\): duplicate tool name")


def test_path_parameter_the_model_lacks_stops_start_up(document):
    document["tools"][1]["path"] = "/api/v2/contacts/{contact_id}"
    _fails(document, r"entry 1 \(get_contact\): path parameters \['contact_id'\] are not fields of ById")


def test_operation_not_in_contract_stops_start_up(document):
    document["tools"][0]["operation"] = "getContactz"
    _fails(document, r"entry 0 \(list_contacts\): operation 'getContactz' is not an operationId")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("kind", "risky", "kind must be one of"),
        ("method", "FETCH", "method must be one of"),
        ("requires", ["root"], "unknown requirements"),
        ("nonsense", 1, "unknown keys"),
    ],
)
def test_other_mistakes_stop_start_up(document, key, value, match):
    document["tools"][0][key] = value
    _fails(document, match)


def test_a_concise_form_naming_a_field_the_contract_lacks_stops_start_up(document):
    document["concise"]["Contact"].append("nickname")
    _fails(document, r"concise Contact: the contract's entity has no field 'nickname'")
    document["concise"]["Contact"].pop()
    document["concise"]["Kontakt"] = ["id"]
    _fails(document, r"concise: 'Kontakt' is no entity of the contract")


def test_missing_key_stops_start_up(document):
    broken = copy.deepcopy(document)
    del broken["tools"][0]["kind"]
    _fails(broken, r"entry 0 \(list_contacts\): missing keys \['kind'\]")


def test_cli_reports_a_broken_catalogue_without_a_traceback(monkeypatch, capsys, document):
    from relatel_mcp import cli

    document["tools"][0]["args"] = "Nope"
    monkeypatch.setattr(catalog, "load", lambda: catalog.parse(document))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tools"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "entry 0 (list_contacts): unknown args model 'Nope'" in err and "Traceback" not in err


def test_the_docs_tool_table_is_generated_from_the_catalogue():
    from relatel_mcp.cli import tools_markdown

    page = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")
    table = page.split("<!-- tools:start -->\n")[1].split("\n<!-- tools:end -->")[0]
    assert table.splitlines() == tools_markdown(), "run: .venv/bin/python scripts/regenerate.py"


def test_a_gated_tool_the_gate_cannot_describe_stops_the_server_at_start_up(document, monkeypatch, tmp_path):
    """A costly or destructive tool needs a resolver in policy/facts.py; without one the server
    refuses to start, naming the tool, rather than failing when the tool is first called."""
    from relatel_mcp.app import assemble
    from relatel_mcp.policy import facts

    from .support import settings_for

    entry = next(e for e in document["tools"] if e["name"] == "create_contact_comment")
    entry["kind"] = "costly"  # a new paid operation, its facts resolver forgotten
    broken = catalog.parse(document)
    with pytest.raises(CatalogError, match=r"create_contact_comment is costly or destructive .* no resolver"):
        facts.check_resolvers(broken)
    facts.check_resolvers(catalog.load())  # the shipped catalogue: every gated tool described

    monkeypatch.setattr(catalog, "load", lambda: broken)

    async def start() -> None:
        async with assemble(settings_for("http://127.0.0.1:9", state_dir=tmp_path)):
            pass

    with pytest.raises(CatalogError, match="create_contact_comment"):
        anyio.run(start)


HINTS = {  # docs/safety.md#kinds: readOnly, destructive, idempotent (by method), openWorld
    "read": lambda method: (True, False, True, False),
    "write": lambda method: (False, False, method in ("PUT", "PATCH"), False),
    "destructive": lambda method: (False, True, method == "DELETE", False),
    "costly": lambda method: (False, True, False, True),
}


@pytest.mark.anyio
async def test_a_client_sees_each_tools_four_hints_as_the_kinds_table_says(sandbox):
    """tools/list as an MCP client gets it (one that can ask its user: every tool listed)."""
    from .support import answering, connect

    operations = {op.name: op for op in catalog.load()}
    async with connect(sandbox.url, elicitation_callback=answering("decline")) as session:
        tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == set(operations)
    for tool in tools:
        op, hints = operations[tool.name], tool.annotations
        seen = (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert seen == HINTS[op.kind](op.method), tool.name
