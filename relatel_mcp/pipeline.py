"""One tool call, as short named steps: validate → gate → build → send → shape.

Every tool runs through `Pipeline.call`; nothing here knows which tool it is beyond its catalogue
entry, and nothing knows whether the upstream is Relatel or the sandbox.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any
from urllib.parse import quote

import httpx2
import jsonschema
import mcp.types as types
from pydantic import ValidationError

from . import errors
from .catalog import Operation
from .client import RelatelClient, Tenant, UpstreamRequest
from .errors import ToolError
from .models import Args
from .policy import Approval, Channel, Gate
from .policy.audit import Audit, decision_for, upstream_id
from .policy.facts import Reader


class Pipeline:
    def __init__(self, client: RelatelClient, gate: Gate) -> None:
        self.client = client
        self.gate = gate

    async def call(
        self, op: Operation, arguments: dict[str, Any] | None, tenant: Tenant, channel: Channel
    ) -> types.CallToolResult | types.InputRequiredResult:
        arguments = dict(arguments or {})
        token = arguments.pop(TOKEN_ARGUMENT, None) if self.gate.policy.offers_preview(op.kind) else None
        audit = Audit(self.gate.store, op, tenant, arguments)
        try:
            args = validate(op, arguments, token)
            audit.arguments = args.upstream_fields()
            request = build_request(op, args)
            approval = await self.gate.authorize(op, args, tenant, channel, token, self._reader(op, tenant))
            if isinstance(approval, types.InputRequiredResult):
                audit.record("asked", "elicitation")
                return approval
            audit.channel = approval.channel
            if approval.channel == "dry_run":
                audit.record("dry_run", detail=approval.facts.question if approval.facts else None)
                return dry_run_result(op, request, approval)
            self.gate.spend(tenant, approval)
            audit.sent = True
            response = await self._send(request, tenant, approval)
            result = shape(op, response)
            audit.record("sent", status=response.status_code, detail=upstream_id(result))
            return result
        except ToolError as error:
            audit.record(decision_for(error, audit.sent), status=error.status, detail=error.message)
            return error_result(error, secrets=(tenant.token, token))

    async def _send(self, request: UpstreamRequest, tenant: Tenant, approval: Approval) -> httpx2.Response:
        response = await self.client.send(request, tenant)
        if 400 <= response.status_code < 500:
            self.gate.refund(tenant, approval)  # refused upstream: nothing happened, nothing spent
        return response

    def _reader(self, op: Operation, tenant: Tenant) -> Reader:
        """GETs for resolving a gated call's facts, as the same tenant: JSON, or None on 404."""

        async def read(path: str) -> Any:
            response = await self.client.send(UpstreamRequest("GET", path), tenant)
            if response.status_code == 404:
                return None
            if not response.is_success:
                raise errors.from_response(op, response)
            return _json(response)

        return read


TOKEN_ARGUMENT = "confirmation_token"


def dry_run_result(op: Operation, request: UpstreamRequest, approval: Approval) -> types.CallToolResult:
    data = {"dry_run": True, "sent": False, "request": request.describe()}
    if approval.facts is not None:
        data["would_ask"] = approval.facts.question
    return types.CallToolResult(
        content=[types.TextContent(text="Dry run, nothing was sent. " + compact_json(data))],
        structured_content=data,
    )


def validate(op: Operation, arguments: dict[str, Any] | None, token: Any = None) -> Args:
    if token is not None and not isinstance(token, str):
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {TOKEN_ARGUMENT} must be a string.",
            field=TOKEN_ARGUMENT,
        )
    try:
        return op.args.model_validate(arguments or {})
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors(include_url=False, include_input=False)]
        fields = [field for field, _ in problems if field]
        detail = "; ".join(f"{field}: {text}" if field else text for field, text in problems)
        raise ToolError(
            "invalid_argument",
            f"Invalid arguments for {op.name}: {detail}. Nothing was sent.",
            field=fields[0] if fields else None,
            hint="Fix the arguments to match the tool's input schema and call again.",
        ) from None


def _problem(error: Any) -> tuple[str | None, str]:
    location = ".".join(str(part) for part in error["loc"])
    text = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        text = "unknown argument"
    return location or None, text


def build_request(op: Operation, args: Args) -> UpstreamRequest:
    """The contract's request: path parameters filled in, the rest as query or (wrapped) body."""
    data = args.upstream_fields()
    path = op.path.format(**{name: quote(str(data.pop(name)), safe="") for name in op.path_params})
    if op.method in ("GET", "DELETE"):
        return UpstreamRequest(op.method, path, params=tuple(_query_pairs(data)))
    body = {op.body: data} if op.body else data
    return UpstreamRequest(op.method, path, json=body or None)


def _query_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
    return pairs


def shape(op: Operation, response: httpx2.Response) -> types.CallToolResult:
    """A successful answer as structured content plus compact text; anything else as an error."""
    if not response.is_success:
        raise errors.from_response(op, response)
    if op.media == "audio/mpeg":
        return _audio(op, response)
    if op.media == "text/csv":
        return _csv(response)
    if op.output_schema is None:
        return types.CallToolResult(content=[types.TextContent(text=response.text or "OK")])
    structured = _structured(op, _json(response))
    return types.CallToolResult(
        content=[types.TextContent(text=compact_json(structured))],
        structured_content=structured,
    )


def _json(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise errors.bad_response("not valid JSON") from None


def _structured(op: Operation, body: Any) -> dict[str, Any]:
    structured = {op.list_key: body} if op.list_key else body
    if not isinstance(structured, dict):
        raise errors.bad_response(f"expected a JSON object, got {type(body).__name__}")
    if op.page is not None and (cursor := _next_page(op, structured)):
        structured = {**structured, "next_page": cursor}
    problem = jsonschema.exceptions.best_match(_validator(op).iter_errors(structured))
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "the top level"
        raise errors.bad_response(f"unexpected shape at {where}: {problem.message[:200]}")
    return structured


def _next_page(op: Operation, structured: dict[str, Any]) -> dict[str, Any] | None:
    assert op.page is not None
    items = next((v for v in structured.values() if isinstance(v, list)), [])
    last = items[-1] if items and isinstance(items[-1], dict) else None
    if last is None or last.get(op.page.field) is None:
        return None
    value = last[op.page.field]
    return {op.page.param: value + op.page.step if isinstance(value, int) else value}


_validators: dict[str, jsonschema.Draft202012Validator] = {}


def _validator(op: Operation) -> jsonschema.Draft202012Validator:
    """Results are checked against the tool's own output schema, as MCP clients will."""
    if op.name not in _validators:
        _validators[op.name] = jsonschema.Draft202012Validator(op.output_schema)
    return _validators[op.name]


def _audio(op: Operation, response: httpx2.Response) -> types.CallToolResult:
    data = response.content
    mime = response.headers.get("content-type", "audio/mpeg").split(";")[0].strip()
    if not mime.startswith("audio/") or not data:
        raise errors.bad_response(f"expected an MP3 recording, got {mime or 'nothing'}")
    return types.CallToolResult(
        content=[
            types.TextContent(text=f"Voicemail recording ({mime}, {len(data)} bytes)."),
            types.AudioContent(data=base64.b64encode(data).decode("ascii"), mime_type=mime),
        ]
    )


def _csv(response: httpx2.Response) -> types.CallToolResult:
    text = response.text
    rows = list(csv.DictReader(io.StringIO(text), restkey="_extra", restval=""))
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content={"rows": rows})


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def error_result(error: ToolError, *, secrets: tuple[str | None, ...]) -> types.CallToolResult:
    payload = json.loads(errors.redact(json.dumps(error.payload()), secrets))
    return types.CallToolResult(
        content=[types.TextContent(text=errors.redact(error.text(), secrets))],
        structured_content=payload,
        is_error=True,
    )
