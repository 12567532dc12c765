"""The error contract: bad input never leaves the server, upstream failures become isError results
an agent can act on, and the token appears nowhere.

Bad input, protocol errors and the token's absence (from results and every log line, the HTTP
server's included) are tried in both eras over streamable HTTP on a loopback socket. Upstream
failures are mapped to results in the server and cross a transport as those results do, so they
are tried in process."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from .support import ALLOW, ROUTES, connect, error_of, wire

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def sessions(sandbox: Any, anyio_backend: str) -> AsyncIterator[dict[tuple[str, str], Client]]:
    """One MCP session for each route, kept for the module's bad input: it is refused before
    anything is sent upstream or kept, so one session serves every case, as a client's does."""
    async with AsyncExitStack() as stack:
        yield {
            (mode, transport): await stack.enter_async_context(
                connect(sandbox.url, mode=mode, transport=transport, policy=ALLOW)
            )
            for mode, transport in ROUTES
        }


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
@pytest.mark.parametrize(
    ("tool", "args", "field", "words"),
    [
        ("list_contacts", {"limit": 500}, "limit", "less than or equal to 100"),
        ("list_contacts", {"limit": "10"}, "limit", "valid integer"),
        ("create_contact", {"name": "X", "number": "not a number"}, "number", "not a phone number"),
        ("create_employee", {"email": "ny@fjordlys.dk"}, "name", "Field required"),
        ("get_contact", {"id": 1, "verbose": True}, "verbose", "unknown argument"),
        ("list_calls", {"started_at_gt_or_eq": "last tuesday"}, "started_at_gt_or_eq", "ISO 8601"),
        ("list_calls", {"direction": "sideways"}, "direction", "'incoming' or 'outgoing'"),
        ("update_contact", {"id": 2}, None, "give at least one of: name, number, email"),
        ("initiate_call", {"to_number": "112"}, "to_number", "not a valid phone number"),
        ("list_smileys", {"commented": False}, "commented", "Input should be True"),
        ("list_smileys", {"rating": True}, "rating", "valid integer"),  # a boolean is never an integer
        ("get_contact", {"id": "7"}, "id", "valid integer"),
        ("delete_contact", {"id": 1.5}, "id", "valid integer"),
        ("update_contact", {"id": 1, "name": None}, None, "give at least one of"),  # null is not given
        ("order_m2m_cancellation", {"subscription_id": None}, None, "give at least one of"),
        ("order_m2m_activation", {"product_name": "M2M 1GB", "icc_id": "８９" * 10}, "icc_id", "pattern"),
        ("send_employee_sms", {"id": 1, "body": ""}, "body", "at least 1 character"),
    ],
)
async def test_invalid_arguments_name_the_argument_and_send_nothing(
    sandbox, sessions, mode, transport, tool, args, field, words
):
    result = await sessions[mode, transport].call_tool(tool, args)
    error = error_of(result)
    assert error["code"] == "invalid_argument" and error["field"] == field
    assert words in error["message"] and "Nothing was sent" in error["message"]
    assert sandbox.requests() == []


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_unknown_tool_is_a_protocol_error_with_suggestions(sandbox, sessions, mode, transport):
    with pytest.raises(MCPError, match=r"Unknown tool 'list_contact'\. Did you mean list_contacts"):
        await sessions[mode, transport].call_tool("list_contact", {})
    assert sandbox.requests() == []


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_401_says_the_token_was_refused(sandbox, mode, transport):
    async with connect(sandbox.url, mode=mode, transport=transport, token="not-a-relatel-token") as session:
        error = error_of(await session.call_tool("list_contacts", {}))
    assert (error["code"], error["status"], error["retryable"]) == ("unauthorized", 401, False)
    assert "RELATEL_TOKEN" in error["hint"]


@pytest.mark.parametrize(
    ("token", "tool", "args", "needs"),
    [
        ("sandbox-starter", "get_reception_call_status", {"id": 101}, "Switch Premium"),
        ("sandbox-employee", "create_employee_group", {"name": "Nyt hold"}, "admin"),
        ("sandbox-starter", "list_m2m_subscriptions", {}, "M2M agreement"),
    ],
)
async def test_403_names_what_is_missing(sandbox, token, tool, args, needs):
    async with connect(sandbox.url, token=token) as session:
        error = error_of(await session.call_tool(tool, args))
    assert (error["code"], error["status"]) == ("forbidden", 403)
    assert needs in error["hint"] and needs.split()[0].lower() in error["message"].lower()


async def test_404_for_unknown_and_other_companies_ids(sandbox):
    async with connect(sandbox.url, token="sandbox-starter") as session:
        for tool, args in [("get_contact", {"id": 1}), ("get_contact", {"id": 9999})]:
            error = error_of(await session.call_tool(tool, args))
            assert (error["code"], error["status"], error["retryable"]) == ("not_found", 404, False)


async def test_422_carries_the_field_the_api_named(sandbox):
    async with connect(sandbox.url) as session:
        result = await session.call_tool(
            "get_statistics",
            {
                "endpoint_type": "reception",
                "group_by": "date",
                "start": "2026-11-01",
                "end": "2026-11-02",
                "endpoint": ["Employee#1"],
            },
        )
    error = error_of(result)
    assert (error["code"], error["status"], error["field"]) == ("rejected", 422, "endpoint")


# Reads are retried (see test_reliability.py): these faults outlast every attempt.


async def test_429_says_when_to_retry(sandbox):
    sandbox.fault(method="GET", path="/api/v2/tags", status=429, retry_after=70, count=10)
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("list_tags", {}))
    assert (error["code"], error["status"], error["retryable"]) == ("rate_limited", 429, True)
    assert error["retry_after"] == 70 and "70 seconds" in error["hint"]
    assert len(sandbox.requests()) == 1  # a wait that long is for the agent to decide on, not us


async def test_5xx_is_retryable_upstream_error(sandbox):
    sandbox.fault(method="GET", path="/api/v2/tags", status=503, count=10)
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("list_tags", {}))
    assert (error["code"], error["status"], error["retryable"]) == ("upstream_error", 503, True)


async def test_timeout(sandbox):
    sandbox.fault(method="GET", path="/api/v2/tags", latency=1.5, count=10)
    async with connect(sandbox.url, read_timeout=0.3) as session:
        error = error_of(await session.call_tool("list_tags", {}))
    assert (error["code"], error["status"], error["retryable"]) == ("timeout", None, True)


async def test_unreachable_upstream():
    async with connect("http://127.0.0.1:9", connect_timeout=1.0) as session:
        error = error_of(await session.call_tool("list_tags", {}))
    assert (error["code"], error["retryable"]) == ("unreachable", True)
    assert "nothing was sent" in error["message"]


async def test_dropped_connection(sandbox):
    sandbox.fault(method="GET", path="/api/v2/tags", drop="before", count=10)
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("list_tags", {}))
    assert (error["code"], error["retryable"]) == ("connection_lost", True)


async def test_malformed_body(sandbox):
    sandbox.fault(method="GET", path="/api/v2/contacts", malformed=True, count=10)
    async with connect(sandbox.url) as session:
        error = error_of(await session.call_tool("list_contacts", {}))
    assert (error["code"], error["retryable"]) == ("bad_response", True)


@pytest.mark.parametrize(("mode", "transport"), ROUTES)
async def test_the_token_appears_in_no_result_error_or_log_line(sandbox, caplog, mode, transport):
    token = "sandbox-tenant-S3CR3T-7f3a9c1e"
    caplog.set_level(logging.DEBUG)
    seen = []
    sandbox.fault(method="GET", path="/api/v2/tags", status=500, count=10)
    async with connect(sandbox.url, mode=mode, transport=transport, token=token, policy=ALLOW) as session:
        for tool, args in [
            ("get_current_employee", {}),
            ("list_tags", {}),
            ("get_contact", {"id": 999}),
            ("list_contacts", {"limit": 1000}),
            ("initiate_call", {"to_number": "+45 28 11 44 77"}),
        ]:
            seen.append(wire(await session.call_tool(tool, args)))
    async with connect(sandbox.url, mode=mode, transport=transport, token="leaked-token-abc123") as session:
        seen.append(wire(await session.call_tool("list_tags", {})))
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]
    assert [r["token_fp"] for r in sandbox.requests()][:4] == [fingerprint] * 4  # it did travel upstream
    text = "\n".join(seen) + caplog.text
    assert token not in text and "leaked-token-abc123" not in text
    assert "S3CR3T" not in text
