"""Argument models: phone numbers as people type them, ISO times, only the contract's constraints
(and those docs/tools.md lists with their reason), and the wire form."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BeforeValidator, ValidationError
from pydantic.fields import FieldInfo

from relatel_mcp.core import catalog
from relatel_mcp.core.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = {o.name: o for o in catalog.load()}


@pytest.mark.parametrize(
    "typed",
    ["+45 71 99 99 99", "0045 71999999", "4571999999", "71 99 99 99", "+45-71-99-99-99", "(+45) 7199 9999"],
)
def test_phone_numbers_are_normalised_to_the_api_form(typed):
    assert MODELS["ContactByNumber"].model_validate({"number": typed}).number == "4571999999"


def test_foreign_numbers_keep_their_country_code():
    assert MODELS["ContactByNumber"].model_validate({"number": "+44 20 7946 0958"}).number == "442079460958"


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "123",
        "+45 1234",
        "",
        "45 71 99 99 99 99 99",
        "++4571999999",
        "+45 7199999x",
        "1-800-FLOWERS",
        4571999999,
    ],
)
def test_things_that_are_not_phone_numbers_are_refused(bad):
    with pytest.raises(ValidationError) as info:
        MODELS["ContactByNumber"].model_validate({"number": bad})
    assert info.value.errors()[0]["loc"] == ("number",)


def test_times_must_be_iso_8601():
    model = MODELS["ListCalls"]
    assert (
        model.model_validate({"started_at_lt_or_eq": "2026-11-20T10:00:00Z"}).started_at_lt_or_eq.year == 2026
    )
    for bad in ("yesterday", "20/11/2026", 1763632800):
        with pytest.raises(ValidationError):
            model.model_validate({"started_at_lt_or_eq": bad})


def test_limits_are_bounded_as_the_contract_says():
    """Contacts: `maximum: 100`, and no minimum; smileys: no bound at all."""
    model = MODELS["ListContacts"]
    for bad in (101, "10", 10.5, True):
        with pytest.raises(ValidationError):
            model.model_validate({"limit": bad})
    assert [model.model_validate({"limit": n}).limit for n in (100, 0, -1)] == [100, 0, -1]
    assert MODELS["ListSmileys"].model_validate({"limit": 500}).limit == 500


def test_unknown_arguments_are_refused():
    with pytest.raises(ValidationError) as info:
        MODELS["ListTags"].model_validate({"nmae": "x"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_updates_with_nothing_to_change_are_refused():
    with pytest.raises(ValidationError, match="give at least one of"):
        MODELS["UpdateContact"].model_validate({"id": 1})


def test_clear_is_sent_as_null_only_where_null_means_something():
    op = OPERATIONS["update_current_employee"]
    for cleared in ("clear", None):  # null: what MCP clients sent before "clear"
        args = op.args.model_validate({"dnd_timeout_at": cleared, "do_not_disturb": True})
        assert op.request(args).json == {"employee": {"dnd_timeout_at": None, "do_not_disturb": True}}
    assert op.request(op.args.model_validate({"cloak_reception_id": "clear"})).json == {
        "employee": {"cloak_reception_id": None}
    }
    tags = OPERATIONS["list_tags"]
    assert tags.request(tags.args.model_validate({"name": None})).params == ()
    assert tags.request(tags.args.model_validate({"name": "clear"})).params == (("name", "clear"),)
    with pytest.raises(ValidationError):
        op.args.model_validate({"cloak_reception_id": "none"})


def test_lists_documented_as_comma_separated_are_sent_that_way():
    op = {o.name: o for o in catalog.load()}["get_reception_statistics"]
    args = op.args.model_validate(
        {
            "id": 1,
            "answer_target": 20,
            "from_time": "2026-11-01T00:00:00Z",
            "to_time": "2026-11-02T00:00:00Z",
            "phase": ["open", "backup"],
        }
    )
    request = op.request(args)
    assert request.path == "/api/v2/receptions/1/statistics"
    assert dict(request.params)["phase"] == "open,backup"


def test_what_the_contract_leaves_open_is_passed_on():
    """Values the contract does not rule out go to Relatel as given (it decides), not refused here."""
    statistics = OPERATIONS["get_statistics"]
    args = statistics.args.model_validate(
        {"endpoint_type": "chat_reception", "group_by": "day", "start": "2026-11-02", "end": "2026-11-01"}
    )
    assert statistics.request(args).params == (
        ("endpoint_type", "chat_reception"), ("group_by", "day"), ("start", "2026-11-02"), ("end", "2026-11-01"),
    )  # fmt: skip
    calls = OPERATIONS["list_calls"]
    args = calls.args.model_validate({"status": "transferred", "endpoint": "ChatReception#3"})
    assert calls.request(args).params == (("endpoint", "ChatReception#3"), ("status", "transferred"))
    for tool, given in [
        ("list_smileys", {"rating": 5}),
        ("get_contact", {"id": 0}),
        ("create_contact", {"email": "not quite an email"}),
        ("create_contact", {"name": "x" * 5000}),
        ("get_call", {"uuid": "not-a-uuid"}),
        ("get_reception_statistics", {"id": 1, "answer_target": 99999, "from_time": "2026-11-02T00:00:00Z",
                                      "to_time": "2026-11-01T00:00:00Z", "phase": ["open"] * 4}),
        ("update_m2m_subscription", {"id": 1, "overuse_limit_dkk": -1, "description": "y" * 500}),
        ("get_m2m_consumption", {"subscription_ids": list(range(200))}),
    ]:  # fmt: skip
        OPERATIONS[tool].args.model_validate(given)


# ------------------------------------------------------------------ constraints beyond the contract


def constraints(annotation: Any, metadata: Any = ()) -> set[str]:
    """Every constraint a field's type carries: bounds, lengths, patterns, closed sets (Literal), and
    the validators that refuse (phone numbers, SHOWN text)."""
    found: set[str] = set()
    for item in metadata:
        if isinstance(item, FieldInfo):
            found |= constraints(object, item.metadata)
        for bound in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            if getattr(item, bound, None) is not None:
                found.add(bound)
        if isinstance(item, BeforeValidator):
            func = item.func
            found.add(
                f"{func.func.__name__}(strict)" if isinstance(func, functools.partial) else func.__name__
            )
    if get_origin(annotation) is Literal:
        found.add("enum")
    elif get_origin(annotation) is Annotated:
        base, *more = get_args(annotation)
        found |= constraints(base, more)
    else:
        for member in get_args(annotation):
            found |= constraints(member)
    return found - {"_iso", "validate"}  # ISO 8601 times: the contract's date-time and date


def contract_parameters(operation: str) -> dict[str, dict[str, Any]]:
    """The contract's schema of each parameter and body field of an operation, by name."""
    openapi = yaml.safe_load((ROOT / "contract" / "openapi.yaml").read_text(encoding="utf-8"))

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = functools.reduce(dict.__getitem__, node["$ref"][2:].split("/"), openapi)
        return node

    found: dict[str, dict[str, Any]] = {}
    for item in openapi["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                for parameter in map(resolve, [*item.get("parameters", []), *op.get("parameters", [])]):
                    schema = resolve(parameter.get("schema", {}))
                    found[parameter["name"]] = {**schema, "description": parameter.get("description", "")}
                    found.update({k: resolve(v) for k, v in schema.get("properties", {}).items()})
                body = resolve(op.get("requestBody", {}).get("content", {}).get("application/json", {}))
                properties = resolve(body.get("schema", {})).get("properties", {})
                for name, schema in properties.items():
                    schema = resolve(schema)
                    found.update({k: resolve(v) for k, v in schema.get("properties", {name: schema}).items()})
    return found


def stated(constraint: str, schema: dict[str, Any]) -> bool:
    if constraint == "enum":
        return "enum" in schema or "enum" in schema.get("items", {})
    if constraint == "le":
        return "maximum" in schema or "maximum 100" in schema.get("description", "")
    return False


def test_every_constraint_beyond_the_contract_is_listed_with_its_reason():
    """The models check what the contract states; anything more is in docs/tools.md's table, whose
    first column names exactly those arguments (a constraint removed leaves no stale row)."""
    beyond = set()
    for op in OPERATIONS.values():
        contract = contract_parameters(op.operation)
        for name, field in op.args.model_fields.items():
            kinds = constraints(field.annotation, field.metadata)
            if any(not stated(kind, contract.get(name, {})) for kind in kinds):
                beyond.add(f"{op.name}.{name}")
    page = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")
    table = page.split("**Constraints beyond the contract.**")[1].split("\n\n")[1]
    rows = [line.split(" | ")[0] for line in table.splitlines()[2:]]
    listed = {name for row in rows for name in re.findall(r"`([a-z_0-9]+\.[a-z_0-9]+)`", row)}
    assert beyond == listed
    assert {"initiate_call.to_number", "send_employee_sms.body", "list_smileys.commented"} <= beyond
    assert not beyond & {
        "get_statistics.group_by",
        "list_calls.status",
        "list_contacts.limit",
        "get_contact.id",
    }
