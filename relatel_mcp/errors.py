"""The error contract: every failure a tool call can meet, as one exception with a code.

An agent acts on `code` and `retryable`, shows `message`, follows `hint` and fixes `field`. Each
becomes an `isError` tool result with structured content
`{"error": {code, status, retryable, message, hint, field}}` (plus `retry_after` for 429).

    code                status  when
    invalid_argument    -       the arguments break the tool's schema; nothing was sent
    refused             -       policy refused the call (read-only, deny, kill switch, budget,
                                destination, a bad confirmation token); nothing was sent
    confirmation_required -     a human must confirm first: `confirmation` holds the question
                                and a single-use token for the second call; nothing was sent
    declined            -       the human said no, cancelled, or did not answer; nothing was sent
    unauthorized        401     the Relatel token is missing, invalid or revoked
    forbidden           403     the employee or company lacks admin, Switch Premium or M2M
    not_found           404     no such id (or it belongs to another company)
    rejected            400/422 the API refused the request; `field` names the argument
    rate_limited        429     too many requests; `retry_after` says when to try again
    upstream_error      5xx     Relatel failed
    timeout             -       no answer in time
    unreachable         -       no connection to Relatel
    bad_response        -       the answer could not be read

Messages never contain the token: `redact` runs over every text that leaves the server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:
    from .catalog import Operation


@dataclass
class ToolError(Exception):
    code: str
    message: str
    status: int | None = None
    retryable: bool = False
    hint: str | None = None
    field: str | None = None
    retry_after: float | None = None
    extra: dict[str, Any] = dataclass_field(default_factory=dict)  # more top-level structured content

    def __str__(self) -> str:
        return self.message

    def payload(self) -> dict[str, Any]:
        error = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        if error["retry_after"] is None:
            del error["retry_after"]
        return {"error": error, **self.extra}

    def text(self) -> str:
        parts = [f"Error ({self.code}{f', HTTP {self.status}' if self.status else ''}): {self.message}"]
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


_REQUIREMENT_HINTS = {
    "admin": "Use the token of an admin employee.",
    "switch": "The company needs the Relatel Switch product.",
    "switch_premium": "The company needs the Switch Premium plan.",
    "m2m": "The company needs the separate M2M agreement with Relatel.",
}


def from_response(op: Operation, response: httpx2.Response) -> ToolError:
    """Map an unsuccessful upstream answer to the error an agent can act on."""
    status = response.status_code
    upstream, fields = _upstream_message(response)
    if status == 401:
        return ToolError(
            "unauthorized",
            "Relatel refused the token: it is missing, invalid or revoked.",
            status,
            hint="Create a token at https://app.relatel.dk/account/authorized_applications "
            "and set RELATEL_TOKEN.",
        )
    if status == 403:
        needs = [_REQUIREMENT_HINTS[r] for r in op.requires]
        return ToolError(
            "forbidden",
            f"Relatel refused {op.name}: {upstream or 'not allowed for this employee or company'}.",
            status,
            hint=" ".join(needs) or "The employee behind the token may lack the rights for this.",
        )
    if status == 404:
        return ToolError(
            "not_found",
            f"Not found: {upstream or 'no such ' + op.toolset.rstrip('s') + ' for this company'}.",
            status,
            hint="Check the id; list tools show the ids that exist.",
        )
    if status in (400, 422):
        field = next(iter(fields), None)
        detail = "; ".join(f"{k} {', '.join(v)}" for k, v in fields.items()) or upstream
        return ToolError("rejected", f"Relatel rejected the request: {detail}.", status, field=field)
    if status == 429:
        wait = _retry_after(response)
        return ToolError(
            "rate_limited",
            "Relatel's rate limit was hit.",
            status,
            retryable=True,
            hint=f"Retry after {wait:g} seconds." if wait is not None else "Retry in a little while.",
            retry_after=wait,
        )
    if status >= 500:
        return ToolError(
            "upstream_error",
            f"Relatel failed with HTTP {status}.",
            status,
            retryable=True,
            hint="Try again shortly.",
        )
    return ToolError("upstream_error", f"Unexpected HTTP {status} from Relatel.", status)


def from_transport(exc: httpx2.TransportError) -> ToolError:
    if isinstance(exc, httpx2.TimeoutException):
        return ToolError("timeout", "Relatel did not answer in time.", retryable=True, hint="Try again.")
    if isinstance(exc, httpx2.ConnectError):
        return ToolError(
            "unreachable",
            "Could not connect to Relatel.",
            retryable=True,
            hint="Check the network and RELATEL_BASE_URL.",
        )
    return ToolError("unreachable", "The connection to Relatel broke.", retryable=True, hint="Try again.")


def bad_response(detail: str) -> ToolError:
    return ToolError("bad_response", f"Relatel's answer could not be read: {detail}.", retryable=True)


def _upstream_message(response: httpx2.Response) -> tuple[str, dict[str, list[str]]]:
    try:
        body = response.json()
    except ValueError:
        return "", {}
    if not isinstance(body, dict):
        return "", {}
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    fields = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
    return message[:300], fields


def _retry_after(response: httpx2.Response) -> float | None:
    try:
        wait = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return wait if math.isfinite(wait) and wait >= 0 else None
