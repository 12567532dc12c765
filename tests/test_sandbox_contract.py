"""Every contract operation, called over real HTTP, answers with a body valid against the contract.

Validation is strict: besides the contract's own schema (Draft 2020-12, formats checked), objects may
carry no property the contract does not declare, unless the contract allows extra properties.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from relatel_mcp.sandbox.data import fixed_uuid

from .support import TOOL_COUNT

CONTRACT = Path(__file__).resolve().parents[1] / "contract" / "openapi.yaml"
DOC_URI = "urn:relatel:openapi"
OAUTH = {"oauthAuthorize", "oauthToken"}
CSV_COLUMNS = [
    "subscription_id", "subscription_state", "phone_number", "product_name", "icc", "type", "count",
    "dkk_to_vat", "dkk_no_vat", "subscription_activated_on", "subscription_cancelled_on",
    "formatted_phone_number", "description",
]  # fmt: skip


def load_contract() -> dict[str, Any]:
    return yaml.load(
        CONTRACT.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )


def strict(node: Any) -> Any:
    """Forbid undeclared properties wherever the contract lists properties and allows no extras."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if isinstance(node.get("properties"), dict) and not {
        "additionalProperties",
        "unevaluatedProperties",
    } & set(node):
        out["unevaluatedProperties"] = False
    return out


DOCUMENT = load_contract()
REGISTRY = Registry().with_resource(DOC_URI, Resource.from_contents(strict(DOCUMENT), DRAFT202012))
OPERATIONS = {
    op["operationId"]: (method.upper(), path, op)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if isinstance(op, dict) and "operationId" in op and op["operationId"] not in OAUTH
}


@dataclass(frozen=True)
class Case:
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    token: str = "sandbox-admin"
    nonempty: str | None = None  # top-level key (or "" for a bare array) that must hold a non-empty list


CALL_UUID = fixed_uuid("call-c07")
CHAT_UUID = fixed_uuid("chat-chat1")
RANGE = {"from_time": "2026-11-01T00:00:00+01:00", "to_time": "2026-11-30T23:59:59+01:00"}

CASES: dict[str, Case] = {
    "getOrders": Case("/api/v2/orders", nonempty="orders"),
    "getOrder": Case("/api/v2/orders/1234"),
    "getM2MSubscriptionIds": Case("/api/v2/m2m/subscriptions", nonempty=""),
    "getM2MSubscription": Case("/api/v2/m2m/subscriptions/4567"),
    "updateM2MSubscription": Case(
        "/api/v2/m2m/subscriptions/4567",
        {"subscription": {"description": "John's autocamper", "overuse_limit_dkk": 100}},
    ),
    "createM2MActivationOrder": Case(
        "/api/v2/m2m/activation_orders",
        {
            "order": {
                "product_name": "m2m-small-one",
                "icc_id": "89450123456789012379",
                "description": "Silo 2",
            }
        },
    ),
    "createM2MCancellationOrder": Case(
        "/api/v2/m2m/cancellation_orders", {"order": {"subscription_id": 4568}}
    ),
    "getM2MConsumptionCsv": Case("/api/v2/m2m/consumption", params={"subscription_ids": ["4567", "4568"]}),
    "createSubscriptionCancellationOrder": Case(
        "/api/v2/subscriptions/cancellation_orders",
        {"order": {"phone_number": "4571991234", "cancel_on": "2026-12-31"}},
    ),
    "createM2MProductChangeOrder": Case(
        "/api/v2/m2m/product_change_orders",
        {"order": {"phone_number": "4571991234", "product_name": "m2m-large"}},
    ),
    "getEmployees": Case("/api/v2/employees", nonempty="employees"),
    "createEmployee": Case(
        "/api/v2/employees",
        {"employee": {"name": "Nikolaj Berg", "email": "nb@fjordlys.dk", "number": "4525252525"}},
    ),
    "getEmployee": Case("/api/v2/employees/2"),
    "updateEmployee": Case(
        "/api/v2/employees/5", {"employee": {"do_not_disturb": False, "name": "Freja Madsen"}}
    ),
    "deleteEmployee": Case("/api/v2/employees/4"),
    "getCurrentEmployee": Case("/api/v2/employee"),
    "updateCurrentEmployee": Case(
        "/api/v2/employee",
        {"employee": {"do_not_disturb": True, "dnd_timeout_at": "2026-11-21T08:00:00+01:00"}},
    ),
    "sendEmployeeMessage": Case("/api/v2/employees/2/message", {"message": {"body": "Husk mødet kl. 14"}}),
    "getEmployeeGroups": Case("/api/v2/employee_groups", nonempty="employee_groups"),
    "createEmployeeGroup": Case(
        "/api/v2/employee_groups", {"employee_group": {"name": "Lager", "employee_ids": [4, 5]}}
    ),
    "getEmployeeGroup": Case("/api/v2/employee_groups/1"),
    "updateEmployeeGroup": Case(
        "/api/v2/employee_groups/2", {"employee_group": {"name": "Salg og marketing"}}
    ),
    "joinEmployeeGroup": Case("/api/v2/employee_groups/2/join", token="sandbox-employee"),
    "leaveEmployeeGroup": Case("/api/v2/employee_groups/1/leave", token="sandbox-employee"),
    "sendEmployeeGroupMessage": Case("/api/v2/employee_groups/1/message", {"body": "Kaffe i kantinen nu ☕"}),
    "getReceptions": Case("/api/v2/receptions", nonempty="receptions"),
    "getReception": Case("/api/v2/receptions/1"),
    "getReceptionStatistics": Case("/api/v2/receptions/1/statistics", params={"answer_target": 20, **RANGE}),
    "getReceptionCallStatus": Case("/api/v2/receptions/1/status"),
    "getStatistics": Case(
        "/api/v2/statistics",
        params={"endpoint_type": "employee", "group_by": "date", "start": "2026-11-01", "end": "2026-11-20"},
        nonempty="rows",
    ),
    "getVoiceMails": Case("/api/v2/voice_mails", nonempty="voice_mails"),
    "getVoiceMail": Case("/api/v2/voice_mails/1"),
    "updateVoiceMail": Case("/api/v2/voice_mails/2", {"voice_mail": {"heard": True, "comment": "Ringet op"}}),
    "deleteVoiceMail": Case("/api/v2/voice_mails/3"),
    "downloadVoiceMail": Case("/api/v2/voice_mails/1/sound"),
    "getChats": Case("/api/v2/chats", nonempty="chats"),
    "getChat": Case(f"/api/v2/chats/{CHAT_UUID}"),
    "getContacts": Case("/api/v2/contacts", nonempty="contacts"),
    "createContact": Case("/api/v2/contacts", {"contact": {"name": "Relatel A/S", "number": "4571999999"}}),
    "getContact": Case("/api/v2/contacts/1"),
    "updateContact": Case("/api/v2/contacts/2", {"contact": {"email": "anne@kristensen.dk"}}),
    "deleteContact": Case("/api/v2/contacts/12"),
    "getContactByNumber": Case("/api/v2/contacts/by_number/4528114477"),
    "getContactComments": Case("/api/v2/contacts/1/comments", nonempty="comments"),
    "createContactComment": Case("/api/v2/contacts/1/comments", {"comment": {"body": "Ringer igen fredag."}}),
    "deleteContactComment": Case("/api/v2/contacts/1/comments/2"),
    "getCalls": Case("/api/v2/calls", params={"limit": 100}, nonempty="calls"),
    "getCall": Case(f"/api/v2/calls/{CALL_UUID}"),
    "initiateCall": Case(
        "/api/v2/switch/dial", {"to_number": "4528114477", "restrict_to": "", "cloak_reception_id": "1"}
    ),
    "getSmileys": Case("/api/v2/smileys", nonempty="smileys"),
    "getSmileyStatistics": Case("/api/v2/smileys/statistics", params=RANGE),
    "getMessages": Case("/api/v2/messages", nonempty="messages"),
    "getTags": Case("/api/v2/tags", nonempty=""),
}

VALIDATED: set[str] = set()


def response_content(operation: dict[str, Any]) -> dict[str, Any]:
    return operation["responses"]["200"].get("content", {})


def schema_validator(method: str, path: str, media_type: str) -> Draft202012Validator:
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in ("paths", path, method.lower()))
    media = media_type.replace("~", "~0").replace("/", "~1")
    ref = {"$ref": f"{DOC_URI}#/{pointer}/responses/200/content/{media}/schema"}
    return Draft202012Validator(ref, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_mp3(body: bytes) -> None:
    assert len(body) > 1000
    if body.startswith(b"ID3"):
        size = (body[6] << 21) | (body[7] << 14) | (body[8] << 7) | body[9]
        body = body[10 + size :]
    assert body[0] == 0xFF and body[1] & 0xE0 == 0xE0, "no MPEG frame sync"


def check_csv(text: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) > 1 and all(len(row) == len(CSV_COLUMNS) for row in rows)


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Any:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nsandbox contract: {len(VALIDATED)}/{len(OPERATIONS)} operations validate")


def test_every_operation_has_a_case() -> None:
    assert len(OPERATIONS) == TOOL_COUNT  # one tool each
    assert set(CASES) == set(OPERATIONS)


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_operation_matches_contract(sandbox: Any, operation_id: str) -> None:
    method, path, operation = OPERATIONS[operation_id]
    case = CASES.get(operation_id)
    assert case is not None, f"no contract case for {operation_id}"
    response = sandbox.api(case.token).request(method, case.path, json=case.json, params=case.params)
    assert response.status_code == 200, response.text
    content = response_content(operation)
    media_type = next(iter(content), "application/json")
    assert response.headers["content-type"].split(";")[0] == media_type
    if media_type == "audio/mpeg":
        check_mp3(response.content)
    elif media_type == "text/csv":
        check_csv(response.text)
    elif "schema" in content.get(media_type, {}):
        body = response.json()
        errors = sorted(schema_validator(method, path, media_type).iter_errors(body), key=str)
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        if case.nonempty is not None:
            assert body if case.nonempty == "" else body[case.nonempty], "expected seeded items"
    else:
        assert response.json() == {}
    VALIDATED.add(operation_id)


def test_strict_schema_rejects_undeclared_fields() -> None:
    """The strict mode is real: an extra property on a contact fails validation."""
    _, path, _ = OPERATIONS["getContact"]
    validator = schema_validator("GET", path, "application/json")
    contact = {"id": 1, "name": "A", "number": "4520112233", "number_formatted": "20 11 22 33", "email": None}
    assert validator.is_valid({"contact": contact})
    assert not validator.is_valid({"contact": {**contact, "company_id": 1}})


def test_m2m_requirements_match_contract_tags() -> None:
    from relatel_mcp.sandbox.auth import M2M, REQUIREMENTS

    tagged = {op_id for op_id, (_, _, op) in OPERATIONS.items() if "M2M" in op.get("tags", [])}
    assert {op_id for op_id, need in REQUIREMENTS.items() if need is M2M} == tagged


def test_routes_match_contract() -> None:
    """The sandbox's route table is the contract's: same operation ids, methods and paths."""
    from relatel_mcp.sandbox.app import OPERATIONS as ROUTES

    def plain(path: str) -> str:
        return path.replace(":int}", "}")

    assert {op: (m, plain(p)) for op, m, p, _ in ROUTES} == {
        op: (m, p) for op, (m, p, _) in OPERATIONS.items()
    }


def test_mutated_state_still_matches_contract(sandbox: Any) -> None:
    """Records created through the API (no number, empty group, pending subscription...) validate too."""
    api = sandbox.api()
    for method, path, body in [
        ("POST", "/api/v2/employees", {"employee": {"name": "Uden Nummer"}}),
        ("POST", "/api/v2/employee_groups", {"employee_group": {"name": "Tom gruppe"}}),
        ("PUT", "/api/v2/employee", {"employee": {"do_not_disturb": True, "cloak_reception_id": None}}),
        ("POST", "/api/v2/contacts", {"contact": {"name": "E", "number": "4529292929", "email": None}}),
        ("DELETE", "/api/v2/voice_mails/1", None),
        ("POST", "/api/v2/contacts/3/comments", {"comment": {"body": "Første note"}}),
        (
            "POST",
            "/api/v2/m2m/activation_orders",
            {"order": {"product_name": "m2m-large", "icc_id": "8" * 20}},
        ),
    ]:
        assert api.request(method, path, json=body).status_code == 200
    new_subscription = api.get("/api/v2/m2m/subscriptions").json()[-1]
    checks = {
        "getEmployees": "/api/v2/employees",
        "getEmployeeGroups": "/api/v2/employee_groups",
        "getCurrentEmployee": "/api/v2/employee",
        "getContacts": "/api/v2/contacts?limit=100",
        "getContactComments": "/api/v2/contacts/3/comments",
        "getCalls": "/api/v2/calls?limit=100",
        "getVoiceMails": "/api/v2/voice_mails",
        "getOrders": "/api/v2/orders",
        "getM2MSubscription": f"/api/v2/m2m/subscriptions/{new_subscription}",
    }
    for operation_id, url in checks.items():
        method, path, _ = OPERATIONS[operation_id]
        errors = list(schema_validator(method, path, "application/json").iter_errors(api.get(url).json()))
        assert not errors, (operation_id, [e.message for e in errors[:3]])
