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
    timeout             -       no answer in time (the request may have arrived)
    connection_lost     -       the connection broke mid-request (the request may have arrived)
    unreachable         -       no connection to Relatel (nothing arrived)
    unavailable         -       the server's state store (or whose account a token is) cannot be
                                reached now; a gated call fails closed, nothing was sent
    bad_response        -       the answer could not be read
    outcome_unknown     -       a call that is not safe to repeat (a phone call, an SMS, an order,
                                a create) met timeout / connection_lost / 5xx / bad_response:
                                it may or may not have happened, it was not retried, and `hint`
                                says how to check before trying again

Messages never contain the token: `redact` runs over every text that leaves the server.

Before any tool runs, `StartUpError` is what a user fixes (a setting, a port, a login): the command
line shows it as one line, without a traceback (ConfigError, BindError, LoginFailed).
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


class StartUpError(Exception):
    """A problem the user fixes (a setting, a port, a login); the message says what to change."""


class ConfigError(StartUpError):
    """A setting is missing or wrong; the message says which and how to fix it."""


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


def redact(text: str, secrets: Iterable[object]) -> str:
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


_REQUIREMENT_HINTS = {
    "admin": "Use the token of an admin employee.",
    "switch": "The company needs the Relatel Switch product.",
    "switch_premium": "The company needs the Switch Premium plan.",
    "m2m": "The company needs the separate M2M agreement with Relatel.",
}


def missing_hint(requirements: Iterable[str]) -> str:
    """What to get for an operation's requirements (tools.yaml `requires`)."""
    return " ".join(_REQUIREMENT_HINTS[r] for r in requirements)


TOKEN_SOURCE = "relatel_mcp.token_source"  # the request's extension that says where its token came from
NEW_TOKEN = "https://app.relatel.dk/account/authorized_applications"
TOKEN_SOURCES = {  # where a Relatel access token came from -> what to do when Relatel refuses it
    "RELATEL_TOKEN": f"The token in RELATEL_TOKEN is not valid (mistyped, revoked or expired): create "
    f"one at {NEW_TOKEN} and set RELATEL_TOKEN to it.",
    "login": "The token kept by relatel-mcp login is no longer valid (revoked or expired): run "
    "relatel-mcp login again.",
    "oauth": "Relatel no longer accepts the token behind your login to this server (revoked or "
    "expired at Relatel): log in again from your MCP client.",
    "client": "The Relatel access token your MCP client sends is not valid (mistyped, revoked or "
    f"expired): give the client a valid one (create one at {NEW_TOKEN}).",
}
SOME_TOKEN = (  # where the source is not known
    "Check the Relatel access token in use (RELATEL_TOKEN, the login kept by relatel-mcp login, or "
    f"the one an MCP client sends): create one at {NEW_TOKEN}."
)


def unauthorized(source: str | None) -> ToolError:
    """Relatel refused the token: the hint says what to fix for the way it was given."""
    return ToolError(
        "unauthorized",
        "Relatel refused the token: it is missing, invalid or revoked.",
        401,
        hint=TOKEN_SOURCES.get(source or "", SOME_TOKEN),
    )


def from_response(op: Operation, response: httpx2.Response) -> ToolError:
    """Map an unsuccessful upstream answer to the error an agent can act on."""
    status = response.status_code
    upstream, fields = _upstream_message(response)
    if status == 401:
        return unauthorized(response.request.extensions.get(TOKEN_SOURCE))
    if status == 403:
        return ToolError(
            "forbidden",
            f"Relatel refused {op.name}: {upstream or 'not allowed for this employee or company'}.",
            status,
            hint=missing_hint(op.requires) or "The employee behind the token may lack the rights for this.",
        )
    if status == 404:
        return ToolError(
            "not_found",
            f"Not found: {upstream or 'no such ' + op.toolset.rstrip('s') + ' for this company'}.",
            status,
            hint=_not_found_hint(op),
        )
    if status in (400, 422):
        field = next(iter(fields), None)
        detail = "; ".join(f"{k} {', '.join(v)}" for k, v in fields.items()) or upstream
        return ToolError("rejected", f"Relatel rejected the request: {detail}.", status, field=field)
    if status == 429:
        wait = retry_after_seconds(response)
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


def _not_found_hint(op: Operation) -> str:
    """What to check after a 404: the id, or for a lookup by phone number (a path parameter
    named `number`) the number, which no contact may have."""
    if "{number}" in op.path:
        return (
            "No contact has this number: check it (with its country code, e.g. +45 28 11 44 77), or "
            "see the contacts' numbers with list_contacts."
        )
    return "Check the id; list tools show the ids that exist."


def from_transport(exc: httpx2.TransportError) -> ToolError:
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return ToolError(
            "unreachable",
            "Could not connect to Relatel; nothing was sent.",
            retryable=True,
            hint="Check the network and RELATEL_BASE_URL, then try again.",
        )
    if isinstance(exc, httpx2.TimeoutException):
        return ToolError("timeout", "Relatel did not answer in time.", retryable=True, hint="Try again.")
    return ToolError("connection_lost", "The connection to Relatel broke.", retryable=True, hint="Try again.")


# Failures after which a request may nevertheless have been carried out upstream.
AMBIGUOUS = frozenset({"timeout", "connection_lost", "upstream_error", "bad_response"})


def outcome_unknown(op: Operation, cause: ToolError) -> ToolError:
    check = f"Check with {op.verify} whether it happened" if op.verify else "Check whether it happened"
    return ToolError(
        "outcome_unknown",
        f"The answer to {op.name} was lost ({cause.message.rstrip('.')}): it may or may not have "
        "happened. It was not retried, so that it cannot happen twice.",
        cause.status,
        hint=f"{check} before trying again.",
    )


def store_unavailable(detail: str) -> ToolError:
    return ToolError(
        "unavailable",
        f"This server cannot reach its state store (budgets, confirmations, the audit): {detail}. "
        "Nothing was sent.",
        retryable=True,
        hint="Try again shortly; reads that change nothing still work.",
    )


def bad_response(detail: str) -> ToolError:
    return ToolError("bad_response", f"Relatel's answer could not be read: {detail}.", retryable=True)


def _upstream_message(response: httpx2.Response) -> tuple[str, dict[str, list[str]]]:
    try:
        body = response.json()
    except ValueError:
        return "", {}
    if not isinstance(body, dict):
        return "", {}
    given_message, given_errors = body.get("message"), body.get("errors")
    message = given_message if isinstance(given_message, str) else ""
    errors = given_errors if isinstance(given_errors, dict) else {}
    fields = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
    return message[:300], fields


def retry_after_seconds(response: httpx2.Response) -> float | None:
    try:
        wait = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return wait if math.isfinite(wait) and wait >= 0 else None
