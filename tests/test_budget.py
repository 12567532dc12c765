"""The daily budget is taken just before a send, and given back only where nothing can have
happened: Relatel refused the request (a 4xx), or it never arrived (no connection). Where the
answer was lost after sending (no answer in time, a 5xx, a dropped connection), the call may have
been placed, so its budget stays spent (docs/safety.md, docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets

from .support import connect, error_of, sent

pytestmark = pytest.mark.anyio

CALL, TO = "initiate_call", {"to_number": "+45 28 11 44 77"}
DIAL = "/api/v2/switch/dial"
ONE_CALL = Policy(costly="allow", budgets=Budgets(calls=1))
TIMEOUT = 0.4
UNREACHABLE = None  # no connection for the send: injected below the HTTP client (see fixture)
GIVEN_BACK: dict[str, dict[str, Any] | None] = {
    "refused (422)": {"status": 422},
    "refused (404)": {"status": 404},
    "rate limited (429)": {"status": 429, "retry_after": 1},
    "unreachable": UNREACHABLE,
}
KEPT: dict[str, dict[str, Any] | None] = {
    "no answer in time": {"latency": 1.0},
    "503": {"status": 503},
    "dropped after sending": {"drop": "after"},
}


@pytest.fixture
def no_connection_for_the_send(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The next POST to Relatel's dial endpoint cannot connect: nothing leaves this machine. A
    connection that fails for the send alone, after the gate's reads got through, is a race that
    real parts cannot be made to lose on cue, hence this one fault at the transport."""
    original = httpx2.AsyncHTTPTransport.handle_async_request
    armed = [False]

    async def handle(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        if armed[0] and (request.method, request.url.path) == ("POST", DIAL):
            armed[0] = False
            raise httpx2.ConnectError("Connection refused", request=request)
        return await original(self, request)

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", handle)
    return lambda: armed.__setitem__(0, True)


@pytest.mark.parametrize("failure", [*GIVEN_BACK, *KEPT])
async def test_the_budget_is_given_back_only_where_nothing_can_have_happened(
    sandbox, no_connection_for_the_send, failure
):
    """A budget of one call; the first call fails, then the next one is tried."""
    fault = {**GIVEN_BACK, **KEPT}[failure]
    if fault is UNREACHABLE:
        no_connection_for_the_send()
    else:
        sandbox.fault(method="POST", path=DIAL, **fault)
    async with connect(sandbox.url, policy=ONE_CALL, read_timeout=TIMEOUT) as session:
        first = error_of(await session.call_tool(CALL, TO))
        tried = sent(sandbox)
        sandbox.clear_requests()
        nxt = await session.call_tool(CALL, TO)
    if failure in GIVEN_BACK:
        assert first["code"] != "outcome_unknown"
        assert not nxt.is_error, nxt  # the budget was whole again
        assert sent(sandbox) == [("POST", DIAL)]
    else:
        assert first["code"] == "outcome_unknown"
        assert error_of(nxt)["code"] == "refused" and "budget" in error_of(nxt)["message"]
        assert sent(sandbox) == []
    if failure == "unreachable":
        assert first["code"] == "unreachable" and tried == []  # the first send never arrived
    else:
        assert tried == [("POST", DIAL)]
