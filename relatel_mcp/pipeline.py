"""One tool call, as short named steps: validate → gate → build → send → shape.

Every tool runs through `Pipeline.call`; nothing here knows which tool it is beyond its catalogue
entry, and nothing knows whether the upstream is Relatel or the sandbox.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2
import jsonschema
import mcp.types as types
from pydantic import ValidationError

from . import errors
from .catalog import Operation
from .client import RelatelClient, UpstreamRequest
from .config import Settings
from .errors import ToolError
from .models import Args


@dataclass(frozen=True)
class Tenant:
    """Whose Relatel account a call acts on. The token never leaves this object but upstream."""

    token: str


class Pipeline:
    def __init__(self, settings: Settings, client: RelatelClient) -> None:
        self.settings = settings
        self.client = client

    async def call(
        self, op: Operation, arguments: dict[str, Any] | None, tenant: Tenant
    ) -> types.CallToolResult:
        try:
            args = validate(op, arguments)
            self._gate(op)
            request = build_request(op, args)
            response = await self.client.send(request, tenant.token)
            return shape(op, response)
        except ToolError as error:
            return error_result(error, secrets=(tenant.token,))

    def _gate(self, op: Operation) -> None:
        if op.gated and not self.settings.unsafe_allow_gated:
            raise ToolError(
                "refused",
                f"{op.name} is a {op.kind} action and needs a human's confirmation, "
                "which this server cannot ask for yet; nothing was sent.",
                hint="An operator can allow costly and destructive tools for sandbox use with "
                "RELATEL_MCP_UNSAFE_ALLOW_GATED=1 (unsafe: the agent then acts unasked).",
            )


def validate(op: Operation, arguments: dict[str, Any] | None) -> Args:
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
