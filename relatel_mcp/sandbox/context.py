"""From an HTTP request to a handler and back: the request context `Ctx`, authentication and the
operation's requirement (401/403), the JSON body (400) and JSON answers (errors in the API's shape).

Handlers are plain functions of a `Ctx`; `api_endpoint` turns one into a Starlette endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relatel_mcp.sandbox.auth import REQUIREMENTS, identify, request_token
from relatel_mcp.sandbox.checks import (
    ApiError,
    Spec,
    decode_json,
    error_response,
    invalid,
    not_found,
    validate,
)
from relatel_mcp.sandbox.data import Company, Record
from relatel_mcp.sandbox.state import SandboxState


@dataclass
class Ctx:
    """What a handler sees: the authenticated employee's company, the request's params and body."""

    state: SandboxState
    company: Company
    me: Record
    params: dict[str, Any]
    query: dict[str, str]
    multi_query: dict[str, list[str]]
    body: Any
    base_url: str

    def find(self, collection: str, key: Any, thing: str) -> Record:
        record = getattr(self.company, collection).get(key)
        if record is None:
            raise not_found(thing)
        return record

    def query_fields(self, spec: Spec) -> dict[str, Any]:
        return validate(self.query, spec)

    def check_cloak(self, reception_id: int | None) -> None:
        """A `cloak_reception_id` must be one of the company's receptions (None: no cloak)."""
        if reception_id is not None and reception_id not in self.company.receptions:
            raise invalid({"cloak_reception_id": ["does not exist"]})


def public(record: Record) -> Record:
    """A stored record without its internal ("_") keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def ts(value: str) -> datetime:
    """A stored time (ISO 8601 with its offset) as a datetime."""
    return datetime.fromisoformat(value)


Handler = Callable[[Ctx], Any]


async def json_body(request: Request) -> Any:
    try:
        return decode_json(await request.body())
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None


async def build_context(request: Request, operation_id: str) -> Ctx:
    """Authenticate (401), enforce the operation's requirement (403) and read the body (400)."""
    state: SandboxState = request.app.state.sandbox
    multi = parse_qs(request.url.query, keep_blank_values=True)
    identity = identify(request_token(request.headers, multi), state.oauth_tokens)
    company = state.companies.get(identity[0]) if identity else None
    me = company.employees.get(identity[1]) if company and identity else None
    if company is None or me is None:
        raise ApiError(401, "unauthorized")
    requirement = REQUIREMENTS.get(operation_id)
    if requirement and not requirement.met(company, me):
        raise ApiError(403, requirement.message)
    body = await json_body(request) if request.method in ("POST", "PUT", "PATCH") else None
    query = {k: v[-1] for k, v in multi.items()}
    base_url = str(request.base_url).rstrip("/")
    return Ctx(state, company, me, dict(request.path_params), query, multi, body, base_url)


def as_response(result: Any) -> Response:
    """A handler's result as sent: a Response as it is, anything else as JSON."""
    return result if isinstance(result, Response) else JSONResponse(result)


def api_endpoint(operation_id: str, handler: Handler) -> Callable:
    async def run(request: Request) -> Response:
        try:
            result = handler(await build_context(request, operation_id))
        except ApiError as error:
            return error.response()
        return as_response(result)

    run.__name__ = operation_id
    return run


async def http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    message = {404: "Not found", 405: "Method not allowed"}.get(status, "error")
    return error_response(status, message)
