"""Generated argument sets for every tool, through a real MCP client in both protocol eras.

Whatever an agent invents (wrong types, missing and extra fields, huge strings, any unicode,
negative and huge numbers, malformed numbers and dates), the server answers: never a crash,
never a protocol error, and every set the tool's published input schema refuses is refused with
the argument named, before anything reaches Relatel (the sandbox counts what it receives).

And the other side: sets made to the published schema, of the values the first side draws from
that are valid (phone numbers, dates, endpoints), are accepted: what is not gated reaches Relatel
(at the path its arguments name, where Relatel answers), a gated call asks the human (who
declines) or finds what it names missing, and sends nothing. Within what the schema leaves
unsaid on purpose (a page's size of at most 100, text with something visible in it, at least
one of an update's fields: relatel_mcp/core/models/common.py).
"""

from __future__ import annotations

import operator
import re
import string
from typing import Any

import anyio.from_thread
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relatel_mcp.core import catalog

from .hygiene import SECRETS
from .support import MODES, answering, connect

EXAMPLES = 25
OPERATIONS = {op.name: op for op in catalog.load()}
TOOLS = list(OPERATIONS)
PHONES = ["+45 71 99 99 99", "0045 71999999", "4571999999"]
DATES = ["2026-11-27"]
TIMES = ["2026-11-27T09:30:00+01:00"]
ENDPOINTS = ["Employee#1", "Reception#2"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(min_size=2000, max_size=20_000),  # huge
    st.sampled_from([*PHONES, "+45 90 90 90 90", "112", "++45", "45-7l-99"]),
    st.sampled_from([*DATES, *TIMES, "2026-13-45", "yesterday", "27/11/2026", "T25:00"]),
    st.sampled_from([*ENDPOINTS, "Employee#", "#1", "open", "backup", "web_call", "mobile"]),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=3)
)


def credential_free(arguments: dict[str, Any]) -> bool:
    """Hypothesis also tries the string constants it finds in the code under test, the sandbox's
    demo tokens among them: an argument holding one would read as a leak to tests/hygiene.py."""
    return not SECRETS.search(repr(arguments))


def argument_sets(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    known = st.fixed_dictionaries({}, optional={name: values for name in schema["properties"]})
    extra = st.dictionaries(st.text(min_size=1, max_size=20), values, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, st.one_of(st.just({}), extra))


def as_published(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`null` for an optional argument means "not given" (documented), so it is not held against it."""
    required = set(schema.get("required", []))
    return {k: v for k, v in arguments.items() if v is not None or k in required}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", TOOLS)
def test_no_argument_set_crashes_the_server_or_reaches_relatel_unvalidated(sandbox, tool, mode):
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        # A client that can ask its user (who declines), so that the gated tools are listed too.
        portal.wrap_async_context_manager(
            connect(sandbox.url, mode=mode, elicitation_callback=answering("decline"))
        ) as session,
    ):
        schema = next(t for t in portal.call(session.list_tools).tools if t.name == tool).input_schema
        validator = jsonschema.Draft202012Validator(schema)

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(argument_sets(schema).filter(credential_free))
        def check(arguments: dict[str, Any]) -> None:
            received = len(sandbox.state.requests)  # the sandbox's own record, read in-process
            result = portal.call(session.call_tool, tool, arguments)  # a protocol error would raise
            schema_valid = validator.is_valid(as_published(arguments, schema))
            error = (result.structured_content or {}).get("error", {}) if result.is_error else {}
            if not schema_valid:
                assert error.get("code") == "invalid_argument", (arguments, result.content[0].text)
                assert error["field"] is not None, error
            if error.get("code") == "invalid_argument":
                assert len(sandbox.state.requests) == received, (
                    arguments,
                    sandbox.state.requests[received:],
                )
                named = error["field"]
                # the argument itself, or a path into one (an argument's own name may hold a dot)
                assert named is None or named in arguments or named.split(".")[0] in schema["properties"], (
                    error
                )

        check()


# ------------------------------------------------------------------ valid sets are accepted


def valid(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one argument that its published schema takes, drawn from the valid ones above
    where the schema leaves the meaning to the name (a phone number, an endpoint)."""
    if "anyOf" in schema:
        return st.one_of(*(valid(name, branch) for branch in schema["anyOf"]))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind, form = schema.get("type"), schema.get("format")
    if kind == "array":
        return st.lists(valid(name, schema["items"]), min_size=1, max_size=3)
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=1, max_value=100)
    if form in ("date", "date-time"):
        return st.sampled_from(DATES if form == "date" else TIMES)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda text: len(text) <= 40)
    if "number" in name:
        return st.sampled_from(PHONES)
    if name == "endpoint":
        return st.sampled_from(ENDPOINTS)
    return st.builds(
        operator.add, st.text(string.ascii_letters, min_size=1, max_size=8), st.text(max_size=32)
    )


def valid_sets(op: catalog.Operation, schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Every required argument, any of the others, and at least one of an update's fields."""
    properties, required = schema["properties"], set(schema.get("required", []))
    some = op.args.at_least_one
    sets = st.fixed_dictionaries(
        {name: valid(name, properties[name]) for name in required},
        optional={name: valid(name, spec) for name, spec in properties.items() if name not in required},
    )
    if not some:
        return sets
    return st.builds(lambda given, one: {**one, **given}, sets, st.one_of(
        *(st.fixed_dictionaries({name: valid(name, properties[name])}) for name in some)
    ))  # fmt: skip


@pytest.mark.parametrize("tool", TOOLS)
def test_every_valid_argument_set_is_accepted(sandbox, tool):
    op = OPERATIONS[tool]
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(
            connect(sandbox.url, elicitation_callback=answering("decline"))
        ) as session,
    ):
        schema = next(t for t in portal.call(session.list_tools).tools if t.name == tool).input_schema
        validator = jsonschema.Draft202012Validator(schema)

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(valid_sets(op, schema).filter(credential_free))
        def check(arguments: dict[str, Any]) -> None:
            assert validator.is_valid(arguments), arguments  # the generator keeps to the schema
            received = len(sandbox.state.requests)
            result = portal.call(session.call_tool, tool, arguments)
            error = (result.structured_content or {}).get("error", {}) if result.is_error else {}
            assert error.get("code") != "invalid_argument", (arguments, error)
            sent = sandbox.state.requests[received:]
            if op.gated:  # asked (and declined), or what it names is missing: nothing sent either way
                assert error.get("code") in ("declined", "not_found"), (arguments, error)
                assert {r["method"] for r in sent} <= {"GET"}, (arguments, sent)
            else:
                assert sent and (result.is_error or reached(op, arguments, sent)), (arguments, sent)

        check()


def reached(op: catalog.Operation, arguments: dict[str, Any], requests: list[dict[str, Any]]) -> bool:
    """Has a request of the operation's method reached its path, at the ids its arguments name?"""
    pattern = re.escape(op.path)
    for name in op.path_params:
        value = arguments[name]
        named = re.escape(str(value)) if isinstance(value, int) else ".+"  # a number or text: as sent
        pattern = pattern.replace(re.escape(f"{{{name}}}"), named)
    return any(r["method"] == op.method and re.fullmatch(pattern, r["path"]) for r in requests)
