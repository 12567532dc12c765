"""Generated argument sets for every tool, through a real MCP client in both protocol eras.

Whatever an agent invents (wrong types, missing and extra fields, huge strings, any unicode,
negative and huge numbers, malformed numbers and dates), the server answers: never a crash,
never a protocol error, and every set the tool's published input schema refuses is refused with
the argument named, before anything reaches Relatel (the sandbox counts what it receives).
"""

from __future__ import annotations

from typing import Any

import anyio.from_thread
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relatel_mcp.core import catalog

from .support import MODES, answering, connect

EXAMPLES = 25
TOOLS = [op.name for op in catalog.load()]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(min_size=2000, max_size=20_000),  # huge
    st.sampled_from(
        ["+45 71 99 99 99", "0045 71999999", "4571999999", "+45 90 90 90 90", "112", "++45", "45-7l-99"]
    ),
    st.sampled_from(
        ["2026-11-27", "2026-11-27T09:30:00+01:00", "2026-13-45", "yesterday", "27/11/2026", "T25:00"]
    ),
    st.sampled_from(["Employee#1", "Reception#2", "Employee#", "#1", "open", "backup", "web_call", "mobile"]),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=3)
)


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
        @given(argument_sets(schema))
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
                assert named is None or named.split(".")[0] in {*schema["properties"], *arguments}, error

        check()
