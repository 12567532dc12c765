"""Input checks shared by every handler: field validators, body unwrapping and the API's errors.

A validator takes a raw value and returns it coerced or raises `Problem`; `validate` gathers the
problems of all fields into one 422 in the API's error shape (`ApiError`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from starlette.responses import JSONResponse

from relatel_mcp.sandbox.data import CPH, error_body

# ---------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.errors)


def error_response(status: int, message: str, errors: dict[str, list[str]] | None = None) -> JSONResponse:
    """An error answered in the API's error shape (see data.error_body)."""
    return JSONResponse(error_body(status, message, errors), status_code=status)


class Problem(ValueError):
    """One field's validation problem, e.g. "can't be blank"."""


def invalid(errors: dict[str, list[str]]) -> ApiError:
    detail = ", ".join(
        f"{name.replace('_', ' ').capitalize()} {p}" for name, ps in errors.items() for p in ps
    )
    return ApiError(422, f"Validation failed: {detail}", errors)


def not_found(thing: str) -> ApiError:
    return ApiError(404, f"{thing} not found")


# ---------------------------------------------------------------------------------------------- validation

Check = Callable[[Any], Any]
Spec = dict[str, tuple[Check, bool]]  # field -> (check, required)
PHONE = re.compile(r"\d{8,15}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
QUERY_TIME_SPACE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)")


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem("must be a string")
    return value


def present(value: Any) -> str:
    if not text(value).strip():
        raise Problem("can't be blank")
    return value


def phone(value: Any) -> str:
    value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, str) or not PHONE.fullmatch(value):
        raise Problem("must be 8-15 digits including the country code, without + or 00")
    return value


def email(value: Any) -> str:
    if not EMAIL.fullmatch(text(value)):
        raise Problem("is invalid")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem("must be true or false")
    return value


def integer(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem("must be an integer")
    return value


def non_negative(value: Any) -> int:
    if integer(value) < 0:
        raise Problem("must be greater than or equal to 0")
    return int(value)


def id_list(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise Problem("must be a list of ids")
    return [integer(item) for item in value]


def nullable(check: Check) -> Check:
    return lambda value: None if value is None or value == "" else check(value)


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> Any:
        if value not in choices:
            raise Problem(f"is not included in the list ({', '.join(map(str, choices))})")
        return value

    return check


def parse_time(raw: Any) -> datetime:
    """ISO 8601 time; no offset means Copenhagen time."""
    value = QUERY_TIME_SPACE.sub(r"\1+\2", text(raw).strip())
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise Problem("is not a valid ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CPH)


def timestamp(raw: Any) -> str:
    return parse_time(raw).isoformat()


def day(raw: Any) -> date:
    try:
        return date.fromisoformat(text(raw))
    except ValueError:
        raise Problem("is not a valid ISO 8601 date") from None


def validate(data: Any, spec: Spec, *, partial: bool = False) -> dict[str, Any]:
    """Check and coerce the fields of `spec`; unknown fields are ignored (like Rails strong params)."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, (check, required) in spec.items():
        if name not in data:
            if required and not partial:
                errors[name] = ["can't be blank"]
            continue
        if data[name] is None and required:
            errors[name] = ["can't be blank"]
            continue
        try:
            clean[name] = check(data[name])
        except Problem as problem:
            errors[name] = [str(problem)]
    if errors:
        raise invalid(errors)
    return clean


def decode_json(raw: bytes) -> Any:
    """A request body as JSON: None when empty, ValueError when it is not JSON."""
    return json.loads(raw) if raw.strip() else None


def unwrap(body: Any, key: str) -> dict[str, Any]:
    """The object under the Rails-style wrapper key, e.g. {"contact": {...}}."""
    inner = body.get(key) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise invalid({key: ["is missing" if inner is None else "must be an object"]})
    return inner


def top_level(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid({"body": ["must be a JSON object"]})
    return body
