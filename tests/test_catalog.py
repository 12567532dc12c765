"""The catalogue covers the whole contract, matches it, and refuses to start when it is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from relatel_mcp import catalog, contract
from relatel_mcp.catalog import CatalogError

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "contract" / "openapi.yaml"


@pytest.fixture(scope="module")
def openapi() -> dict:
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


@pytest.fixture()
def document() -> dict:
    return yaml.safe_load((ROOT / "relatel_mcp" / "tools.yaml").read_text(encoding="utf-8"))


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
    assert len(ops) == 53
    assert sorted(op.operation for op in tools) == sorted(ops)
    assert len({op.name for op in tools}) == 53


def test_tools_use_the_contracts_method_and_path(openapi):
    ops = contract_operations(openapi)
    assert {op.operation: (op.method, op.path) for op in catalog.load()} == ops


def test_shipped_contract_extract_is_up_to_date(openapi):
    shipped = json.loads((ROOT / "relatel_mcp" / "contract.json").read_text(encoding="utf-8"))
    assert shipped == contract.extract(openapi), "run: python -m relatel_mcp.contract contract/openapi.yaml"


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


def test_input_schemas_are_compact_and_closed():
    for op in catalog.load():
        schema = op.args.input_schema()
        text = json.dumps(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False, op.name
        assert '"title"' not in text and "anyOf" not in text and "$defs" not in text, op.name
        assert set(schema.get("required", [])) >= set(op.path_params), op.name


def _schema_keywords(schema: dict) -> set[str]:
    keywords = set(schema) - {"properties"}
    for sub in [*schema.get("properties", {}).values(), *([schema["items"]] if "items" in schema else [])]:
        keywords |= _schema_keywords(sub)
    return keywords


def test_output_schemas_are_types_and_names_only():
    for op in catalog.load():
        if op.output_schema is not None:
            assert op.output_schema["type"] == "object", op.name
            assert _schema_keywords(op.output_schema) <= {"type", "items"}, op.name


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


def test_readme_tool_table_is_generated_from_the_catalogue():
    from relatel_mcp.cli import tools_markdown

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- tools:start -->\n")[1].split("\n<!-- tools:end -->")[0]
    assert table.splitlines() == tools_markdown(), "regenerate: relatel-mcp tools --markdown"
