"""The sandbox: a Starlette app speaking the Relatel API 2.1.2 for a simulated company.

Every contract operation is served from in-memory state (see data.py); OAuth's two (the browser's
authorize page and the token exchange) in oauth.py. This module
holds the route table and `create_app`; the rest lives in modules named after what they hold.
Handlers are plain functions of a request context (context.py), one module per API area
(people.py, traffic.py, statistics.py, orders.py); auth and the plan/admin/M2M restrictions (one
table, auth.py), validation and errors (checks.py), rendering (render.py), lookups and pagination
(listing.py) are shared. Out-of-band control endpoints under /_sandbox/ (loopback only, no auth)
expose the outbox of costly actions, the request log and faults (control.py, faults.py).

Interpretations where the contract is silent:

- GET /api/v2/statistics: endpoint_type is "reception" or "employee", group_by is "date" or
  "endpoint"; start/end are ISO dates (inclusive, Copenhagen days, at most 366 days). Rows count the
  seeded calls: {date | endpoint, endpoint_name, calls, incoming, outgoing, answered, missed,
  talk_duration}. An employee's calls are its direct calls plus reception calls it answered.
- Reception statistics count finished incoming calls to the reception whose phase is in `phase`
  (default all): answered = status answered, missed = missed/voicemail/orphaned; within_target.missed
  counts missed calls that ended within answer_target (callers who gave up early).
- Smiley statistics: totals by kind, happy/angry (rating 1/0), commented, and NPS = % promoters (9-10)
  minus % detractors (0-6), over smileys rated in [from_time, to_time].
- Query times are ISO 8601; times without an offset are Copenhagen time, and a '+' that arrived
  as a space ("...T10:00:00 01:00") is repaired. `commented=false|0` means "without a comment".
- Chats are ordered oldest-updated first, so `updated_at_gt_or_eq` works as a sync cursor. A chat
  carries the visitor's name and email, a status (open, closed), the answering employee_id and
  its messages ({author: visitor | employee, created_at, body}); the contract names these fields
  as this interpretation.
- Voicemails are those of all receptions plus the authenticated employee's own (as documented);
  a call's `voice_mail` (a VoiceMail, as get_voicemail returns it) is shown under the same rule
  (null for a colleague's personal voicemail).
- Call recordings carry a sound URL (/api/v2/call_recordings/N/sound) that the sandbox does not
  serve: the contract has no such operation.
- A contact needs a name or a number (the contract requires neither field; a contact with neither
  is refused with 422 on both).
- Both cancellation orders resolve an M2M subscription by `subscription_id` or `phone_number`.
- A request body that is not JSON gets 400; `to_number` may be a JSON number (the seed example is).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from relatel_mcp.sandbox import faults as fault_mod
from relatel_mcp.sandbox import oauth
from relatel_mcp.sandbox.context import Handler, api_endpoint, http_error
from relatel_mcp.sandbox.control import CONTROL_ROUTES, RequestLog, control
from relatel_mcp.sandbox.listing import (
    CALLS,
    CHATS,
    CONTACTS,
    EMPLOYEES,
    GROUPS,
    MESSAGES,
    ORDERS,
    RECEPTIONS,
    SMILEYS,
    TAGS,
    VOICE_MAILS,
    getter,
    lister,
)
from relatel_mcp.sandbox.orders import (
    ORDERS_BY_OPERATION,
    get_m2m_consumption,
    get_m2m_subscription_ids,
    update_m2m_subscription,
)
from relatel_mcp.sandbox.people import (
    create_contact,
    create_contact_comment,
    create_employee,
    create_employee_group,
    current_employee,
    delete_contact,
    delete_contact_comment,
    delete_employee,
    get_contact_by_number,
    get_contact_comments,
    join_employee_group,
    leave_employee_group,
    send_employee_group_message,
    send_employee_message,
    update_contact,
    update_current_employee,
    update_employee,
    update_employee_group,
)
from relatel_mcp.sandbox.render import call_json, contact_json, employee_json, group_json, plain_json
from relatel_mcp.sandbox.state import SandboxState
from relatel_mcp.sandbox.statistics import (
    get_reception_statistics,
    get_reception_status,
    get_smiley_statistics,
    get_statistics,
)
from relatel_mcp.sandbox.traffic import (
    delete_voice_mail,
    download_voice_mail,
    get_voice_mail,
    initiate_call,
    update_voice_mail,
)

# fmt: off
OPERATIONS: list[tuple[str, str, str, Handler]] = [  # operationId, method, path, handler
    ("getOrders", "GET", "/api/v2/orders", lister(ORDERS)),
    ("getOrder", "GET", "/api/v2/orders/{id:int}", getter("orders", "Order", plain_json)),
    ("getM2MSubscriptionIds", "GET", "/api/v2/m2m/subscriptions", get_m2m_subscription_ids),
    ("getM2MSubscription", "GET", "/api/v2/m2m/subscriptions/{id:int}",
     getter("m2m_subscriptions", "Subscription", plain_json)),
    ("updateM2MSubscription", "PATCH", "/api/v2/m2m/subscriptions/{id:int}", update_m2m_subscription),
    ("createM2MActivationOrder", "POST", "/api/v2/m2m/activation_orders",
     ORDERS_BY_OPERATION["createM2MActivationOrder"]),
    ("createM2MCancellationOrder", "POST", "/api/v2/m2m/cancellation_orders",
     ORDERS_BY_OPERATION["createM2MCancellationOrder"]),
    ("getM2MConsumptionCsv", "GET", "/api/v2/m2m/consumption", get_m2m_consumption),
    ("createSubscriptionCancellationOrder", "POST", "/api/v2/subscriptions/cancellation_orders",
     ORDERS_BY_OPERATION["createSubscriptionCancellationOrder"]),
    ("createM2MProductChangeOrder", "POST", "/api/v2/m2m/product_change_orders",
     ORDERS_BY_OPERATION["createM2MProductChangeOrder"]),
    ("getEmployees", "GET", "/api/v2/employees", lister(EMPLOYEES)),
    ("createEmployee", "POST", "/api/v2/employees", create_employee),
    ("getEmployee", "GET", "/api/v2/employees/{id:int}",
     getter("employees", "Employee", employee_json, "employee")),
    ("updateEmployee", "PUT", "/api/v2/employees/{id:int}", update_employee),
    ("deleteEmployee", "DELETE", "/api/v2/employees/{id:int}", delete_employee),
    ("getCurrentEmployee", "GET", "/api/v2/employee", current_employee),
    ("updateCurrentEmployee", "PUT", "/api/v2/employee", update_current_employee),
    ("sendEmployeeMessage", "POST", "/api/v2/employees/{id:int}/message", send_employee_message),
    ("getEmployeeGroups", "GET", "/api/v2/employee_groups", lister(GROUPS)),
    ("createEmployeeGroup", "POST", "/api/v2/employee_groups", create_employee_group),
    ("getEmployeeGroup", "GET", "/api/v2/employee_groups/{id:int}",
     getter("employee_groups", "Employee group", group_json)),
    ("updateEmployeeGroup", "PUT", "/api/v2/employee_groups/{id:int}", update_employee_group),
    ("joinEmployeeGroup", "POST", "/api/v2/employee_groups/{employee_group_id:int}/join",
     join_employee_group),
    ("leaveEmployeeGroup", "POST", "/api/v2/employee_groups/{employee_group_id:int}/leave",
     leave_employee_group),
    ("sendEmployeeGroupMessage", "POST", "/api/v2/employee_groups/{employee_group_id:int}/message",
     send_employee_group_message),
    ("getReceptions", "GET", "/api/v2/receptions", lister(RECEPTIONS)),
    ("getReception", "GET", "/api/v2/receptions/{id:int}", getter("receptions", "Reception", plain_json)),
    ("getReceptionStatistics", "GET", "/api/v2/receptions/{id:int}/statistics", get_reception_statistics),
    ("getReceptionCallStatus", "GET", "/api/v2/receptions/{id:int}/status", get_reception_status),
    ("getStatistics", "GET", "/api/v2/statistics", get_statistics),
    ("getVoiceMails", "GET", "/api/v2/voice_mails", lister(VOICE_MAILS)),
    ("getVoiceMail", "GET", "/api/v2/voice_mails/{id:int}", get_voice_mail),
    ("updateVoiceMail", "PUT", "/api/v2/voice_mails/{id:int}", update_voice_mail),
    ("deleteVoiceMail", "DELETE", "/api/v2/voice_mails/{id:int}", delete_voice_mail),
    ("downloadVoiceMail", "GET", "/api/v2/voice_mails/{id:int}/sound", download_voice_mail),
    ("getChats", "GET", "/api/v2/chats", lister(CHATS)),
    ("getChat", "GET", "/api/v2/chats/{uuid}", getter("chats", "Chat", plain_json, "chat", key="uuid")),
    ("getContacts", "GET", "/api/v2/contacts", lister(CONTACTS)),
    ("createContact", "POST", "/api/v2/contacts", create_contact),
    ("getContact", "GET", "/api/v2/contacts/{id:int}",
     getter("contacts", "Contact", contact_json, "contact")),
    ("updateContact", "PUT", "/api/v2/contacts/{id:int}", update_contact),
    ("deleteContact", "DELETE", "/api/v2/contacts/{id:int}", delete_contact),
    ("getContactByNumber", "GET", "/api/v2/contacts/by_number/{number}", get_contact_by_number),
    ("getContactComments", "GET", "/api/v2/contacts/{contact_id:int}/comments", get_contact_comments),
    ("createContactComment", "POST", "/api/v2/contacts/{contact_id:int}/comments", create_contact_comment),
    ("deleteContactComment", "DELETE", "/api/v2/contacts/{contact_id:int}/comments/{id:int}",
     delete_contact_comment),
    ("getCalls", "GET", "/api/v2/calls", lister(CALLS)),
    ("getCall", "GET", "/api/v2/calls/{uuid}", getter("calls", "Call", call_json, "call", key="uuid")),
    ("initiateCall", "POST", "/api/v2/switch/dial", initiate_call),
    ("getSmileys", "GET", "/api/v2/smileys", lister(SMILEYS)),
    ("getSmileyStatistics", "GET", "/api/v2/smileys/statistics", get_smiley_statistics),
    ("getMessages", "GET", "/api/v2/messages", lister(MESSAGES)),
    ("getTags", "GET", "/api/v2/tags", lister(TAGS)),
]
# fmt: on


def create_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox ASGI app; `app.state.sandbox` is its SandboxState (a fresh seed if none is given)."""
    state = state or SandboxState()
    routes = [
        Route(path, api_endpoint(op, handler), methods=[method]) for op, method, path, handler in OPERATIONS
    ]
    routes += [
        Route("/api/v2/authorize", oauth.authorize, methods=["GET", "POST"]),
        Route("/api/v2/token", oauth.token, methods=["POST"]),
    ]
    routes += [Route(path, control(fn), methods=[method]) for path, method, fn in CONTROL_ROUTES]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLog, state=state),
            Middleware(fault_mod.FaultInjector, faults=state.faults),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.sandbox = state
    return app
