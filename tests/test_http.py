"""Remote agents: streamable HTTP and legacy SSE over real loopback sockets, with auth and tenants."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.policy import Policy
from relatel_mcp.web.serving import ConnectionLimits

from .hygiene import HYGIENE, HYGIENE_TOKEN
from .support import (
    EXE,
    INITIALIZE,
    MCP_HEADERS,
    TOOL_COUNT,
    answering,
    env,
    error_of,
    http_transport,
    run,
    serve_http,
    settings_for,
    sse_transport,
)

pytestmark = pytest.mark.anyio

KEYS = ("key-one-0123456789abcdef", "key-two-0123456789abcdef")  # two, as during a rotation
ACCOUNT_READS = ("/api/v2/m2m/subscriptions", "/api/v2/receptions")  # what tools/list asks once per account


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@pytest.fixture
def api_key_server(sandbox, tmp_path):
    with serve_http(
        settings_for(sandbox.url, state_dir=tmp_path), HttpOptions(auth="api-key", api_keys=KEYS)
    ) as url:
        yield url


@pytest.fixture
def passthrough_server(sandbox, tmp_path):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    # Many tenants arrive from 127.0.0.1 here: more new tokens per address than the default allows.
    with serve_http(settings, HttpOptions(auth="passthrough", checks_per_client=200)) as url:
        yield url


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
@pytest.mark.parametrize("header", [None, "Bearer wrong-key-0123456789", "Basic a2V5OnZhbHVl"])
async def test_missing_or_wrong_api_key_is_401_with_a_challenge(sandbox, api_key_server, path, header):
    headers = {**MCP_HEADERS, **({"Authorization": header} if header else {})}
    async with httpx2.AsyncClient(base_url=api_key_server) as http:
        if path == "/mcp":
            response = await http.post(path, json=INITIALIZE, headers=headers)
        else:
            response = await http.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="relatel-mcp"')
    assert sandbox.requests() == []


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_api_key_mode_uses_the_servers_relatel_token(sandbox, api_key_server, key, mode):
    async with Client(http_transport(api_key_server, key), mode=mode) as session:
        result = await session.call_tool("get_current_employee", {})
    assert result.structured_content["employee"]["name"] == "Mette Hansen"
    assert {r["token_fp"] for r in sandbox.requests()} == {fingerprint(HYGIENE_TOKEN)}  # the server's token


async def test_api_key_mode_over_legacy_sse(sandbox, api_key_server):
    async with Client(sse_transport(api_key_server, KEYS[0]), elicitation_callback=answering("decline")) as s:
        tools = (await s.list_tools()).tools
        result = await s.call_tool("list_employee_groups", {})
    assert len(tools) == TOOL_COUNT and len(result.structured_content["employee_groups"]) == 2


async def test_passthrough_refuses_tokens_relatel_refuses_before_any_tool_runs(sandbox, passthrough_server):
    async with httpx2.AsyncClient(base_url=passthrough_server) as http:
        missing = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        unknown = await http.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}
        )
    assert missing.status_code == unknown.status_code == 401
    # RFC 6750 §3.1: no error attribute without a credential, invalid_token with a wrong one
    assert missing.headers["www-authenticate"] == 'Bearer realm="relatel-mcp"'
    assert unknown.headers["www-authenticate"] == 'Bearer realm="relatel-mcp", error="invalid_token"'
    # The only upstream request is the one check of the unknown token (cached from then on).
    assert [(r["path"], r["token_fp"], r["status"]) for r in sandbox.requests()] == [
        ("/api/v2/employee", fingerprint("nope"), 401)
    ]


@pytest.mark.parametrize("transport", [http_transport, sse_transport])
async def test_passthrough_acts_as_each_requests_own_token(sandbox, passthrough_server, transport):
    for token, name in [("sandbox-admin", "Mette Hansen"), ("sandbox-starter", "Lars Bager")]:
        async with Client(transport(passthrough_server, token)) as session:
            result = await session.call_tool("get_current_employee", {})
        assert result.structured_content["employee"]["name"] == name
    assert {r["token_fp"] for r in sandbox.requests()} == {
        fingerprint("sandbox-admin"),
        fingerprint("sandbox-starter"),
    }


async def test_a_session_cannot_be_used_with_another_credential(sandbox, passthrough_server):
    async with httpx2.AsyncClient(base_url=passthrough_server, headers=MCP_HEADERS) as http:
        opened = await http.post("/mcp", json=INITIALIZE, headers={"Authorization": "Bearer sandbox-admin"})
        session = opened.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        stolen = await http.post(
            "/mcp", json=ping, headers={"Authorization": "Bearer sandbox-starter", "Mcp-Session-Id": session}
        )
        own = await http.post(
            "/mcp", json=ping, headers={"Authorization": "Bearer sandbox-admin", "Mcp-Session-Id": session}
        )
    assert opened.status_code == 200 and stolen.status_code == 404 and own.status_code == 200


# ------------------------------------------------------------------ protections


async def test_dns_rebinding_protection_rejects_foreign_hosts(api_key_server):
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {KEYS[0]}", "Host": "evil.example.com"}
    async with httpx2.AsyncClient(base_url=api_key_server) as http:
        mcp = await http.post("/mcp", json=INITIALIZE, headers=headers)
        origin = await http.post(
            "/mcp",
            json=INITIALIZE,
            headers={
                **MCP_HEADERS,
                "Authorization": f"Bearer {KEYS[0]}",
                "Origin": "http://evil.example.com",
            },
        )
    assert mcp.status_code == 421 and origin.status_code == 403


@pytest.mark.process  # the command
async def test_allowed_hosts_flag_admits_a_real_hostname(sandbox, tmp_path):
    options = HttpOptions(auth="api-key", api_keys=KEYS, allowed_hosts=("mcp.example.com",))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {KEYS[0]}", "Host": "mcp.example.com"}
            response = await http.post("/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 200


@contextmanager
def cli_server(*args: str) -> Iterator[str]:
    """`relatel-mcp serve --sandbox --auth none` over HTTP as a subprocess: the line it serves at."""
    process = subprocess.Popen(
        [EXE, "serve", "--sandbox", "--auth", "none", "--port", "0", *args],
        env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = ""
        while "serving MCP at" not in line:
            line = process.stderr.readline()
            assert line, "the server exited before serving"
        yield line
    finally:
        process.terminate()
        process.wait(15)


def served_url(line: str) -> str:
    found = re.search(r"serving MCP at (http://127\.0\.0\.1:\d+)/", line)
    assert found, line
    return found.group(1)


@pytest.mark.slow  # a server process for each
@pytest.mark.parametrize(
    ("allowed", "admitted", "refused"),
    [
        (None, [], ["evil.example.com"]),  # loopback only
        ("mcp.example.com,other.example", ["mcp.example.com", "other.example"], ["evil.example.com"]),
        ("*", ["evil.example.com", "mcp.example.com"], []),  # the check is off (a proxy checks)
    ],
)
async def test_allowed_hosts_admits_loopback_the_names_given_or_with_star_any(allowed, admitted, refused):
    flag = ["--allowed-hosts", allowed] if allowed else []
    with cli_server("--transport", "http", *flag) as line:
        url = served_url(line)
        async with httpx2.AsyncClient(base_url=url, headers=MCP_HEADERS) as http:

            async def status(host: str | None) -> int:
                named = {"Host": host, "Origin": f"http://{host}"} if host else {}
                return (await http.post("/mcp", json=INITIALIZE, headers=named)).status_code

            assert await status(None) == 200  # the loopback address the server listens on
            assert [await status(h) for h in admitted] == [200] * len(admitted)
            assert [await status(h) for h in refused] == [421] * len(refused)


@pytest.mark.slow  # a server process for each
@pytest.mark.parametrize(("transport", "endpoints"), [("http", ["/mcp", "/sse"]), ("sse", ["/sse"])])
async def test_transport_http_serves_both_transports_and_sse_only_the_legacy_one(transport, endpoints):
    with cli_server("--transport", transport) as line:
        url = served_url(line)
        async with httpx2.AsyncClient(base_url=url) as http:
            streamable = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        async with Client(sse_transport(url)) as session:
            legacy = await session.call_tool("get_current_employee", {})
    assert line.split(" (")[0].endswith(" and ".join(f"{url}{e}" for e in endpoints))
    assert streamable.status_code == (200 if "/mcp" in endpoints else 404)
    assert legacy.structured_content["employee"]["name"] == "Mette Hansen"


async def test_request_body_size_limit(api_key_server):
    big = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * 2_000_000}}
    async with httpx2.AsyncClient(base_url=api_key_server) as http:
        response = await http.post(
            "/mcp", json=big, headers={**MCP_HEADERS, "Authorization": f"Bearer {KEYS[0]}"}
        )
    assert response.status_code == 413


async def test_concurrent_session_cap(sandbox, tmp_path):
    options = HttpOptions(auth="api-key", api_keys=KEYS, max_sessions=2)
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        async with httpx2.AsyncClient(
            base_url=url, headers={**MCP_HEADERS, "Authorization": f"Bearer {KEYS[0]}"}
        ) as http:
            statuses = [(await http.post("/mcp", json=INITIALIZE)).status_code for _ in range(3)]
    assert statuses == [200, 200, 503]


async def closed_unanswered(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closes this connection without a word (at most `within`)."""
    started = time.monotonic()
    with anyio.fail_after(within):
        assert await reader.read() == b""
    return time.monotonic() - started


async def test_a_body_that_stops_arriving_is_closed_at_its_deadline(sandbox, tmp_path):
    """30 s by default (1 s here): the headers came, the body stopped half-way."""
    options = HttpOptions(auth="api-key", api_keys=KEYS, limits=ConnectionLimits(body_timeout=1.0))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
        head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEYS[0]}\r\n"
        writer.write(f"{head}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode())
        await writer.drain()
        closed_after = await closed_unanswered(reader, within=10)
        writer.close()
    assert 1 <= closed_after < 10 and ConnectionLimits().body_timeout == 30


async def test_connections_beyond_the_cap_are_closed_at_once(sandbox, tmp_path):
    """--max-connections (1000 by default; 3 here) counts every open connection, from anyone."""
    options = HttpOptions(auth="api-key", api_keys=KEYS, limits=ConnectionLimits(total=3))
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path), options) as url:
        address = url.removeprefix("http://").split(":")
        held = [await asyncio.open_connection(*address) for _ in range(3)]
        reader, writer = await asyncio.open_connection(*address)
        refused_after = await closed_unanswered(reader, within=5)
        for _, each in [*held, (reader, writer)]:
            each.close()
    assert refused_after < 1 and ConnectionLimits().total == 1000


async def test_healthz_needs_no_credential(api_key_server):
    async with httpx2.AsyncClient(base_url=api_key_server) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_refuses_to_bind_a_public_address_without_auth():
    exe = str(Path(sys.executable).with_name("relatel-mcp"))
    for args, words in [
        (["--auth", "none", "--host", "0.0.0.0"], "refusing to serve 0.0.0.0 without auth"),
        (["--auth", "api-key"], "RELATEL_MCP_API_KEYS"),
    ]:
        done = run([exe, "serve", "--sandbox", "--transport", "http", *args], env=env(), timeout=30)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------ many tenants at once


@pytest.mark.parametrize(
    ("transport", "sessions", "calls_each"), [(http_transport, 50, 4), (sse_transport, 20, 3)]
)
async def test_concurrent_sessions_each_reach_relatel_with_their_own_token(
    sandbox, passthrough_server, transport, sessions, calls_each
):
    """Interleaved calls from many tenants: every upstream request must carry its session's token.

    Each call carries its session's number (a tag name, a contact id, a contact name), so the
    sandbox's record of each request says which session sent it.
    """
    tokens = [f"sandbox-tenant-t{i:03d}" for i in range(sessions)]

    async def session(i: int) -> None:
        async with Client(
            transport(passthrough_server, tokens[i]), mode="legacy" if i % 2 else "auto"
        ) as client:
            for round_ in range(calls_each):
                await anyio.sleep(0)  # let the other sessions interleave
                if round_ % 3 == 0:
                    await client.call_tool("list_tags", {"name": f"t{i:03d}"})
                elif round_ % 3 == 1:
                    await client.call_tool("get_contact", {"id": 100_000 + i})
                else:
                    await client.call_tool("list_contacts", {"id_gt_or_eq": 200_000 + i})

    async with anyio.create_task_group() as group:
        for i in range(sessions):
            group.start_soon(session, i)

    owners = {fingerprint(t): i for i, t in enumerate(tokens)}
    checked = crossings = 0
    for request in sandbox.requests():
        if request["path"] == "/api/v2/employee" or request["path"].startswith(ACCOUNT_READS):
            continue  # the one credential check per token; what the account can use, once per account
        marker = request["query"].get("name", [""])[0] or request["path"] + str(request["query"])
        i = int(re.search(r"t(\d{3})", marker).group(1)) if marker.startswith("t") else _session_of(request)
        checked += 1
        crossings += owners.get(request["token_fp"]) != i
    print(
        f"\n{transport.__name__}: {sessions} sessions, {sessions * calls_each} calls, {checked} upstream requests checked, {crossings} crossings"
    )
    assert checked == sessions * calls_each and crossings == 0


def _session_of(request: dict[str, Any]) -> int:
    if request["path"].startswith("/api/v2/contacts/"):
        return int(request["path"].rsplit("/", 1)[1]) - 100_000
    return int(request["query"]["id_gt_or_eq"][0]) - 200_000


# ------------------------------------------------------------------ gating over HTTP


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_elicitation_works_over_http(sandbox, api_key_server, mode):
    async with Client(
        http_transport(api_key_server, KEYS[0]), mode=mode, elicitation_callback=answering("accept")
    ) as s:
        result = await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    assert not result.is_error
    assert [r["path"] for r in sandbox.requests() if r["method"] != "GET"] == ["/api/v2/switch/dial"]


async def test_elicitation_over_legacy_sse(sandbox, api_key_server):
    async with Client(sse_transport(api_key_server, KEYS[0]), elicitation_callback=answering("decline")) as s:
        error = error_of(await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"}))
    assert error["code"] == "declined"
    assert [r for r in sandbox.requests() if r["method"] != "GET"] == []


async def test_preview_tokens_are_tied_to_the_account_and_credential_in_passthrough(sandbox, tmp_path):
    """2026-07-28 requests are sessionless: a token works for the credential it was given to."""
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path, policy=Policy(costly="preview"))
    with serve_http(settings, HttpOptions(auth="passthrough")) as url:
        args = {"to_number": "+45 28 11 44 77"}
        async with Client(http_transport(url, "sandbox-admin")) as session:  # Mette
            result = await session.call_tool("initiate_call", args)
            token = result.structured_content["confirmation"]["token"]
        async with Client(http_transport(url, "sandbox-employee")) as session:  # Jonas
            jonas = error_of(await session.call_tool("initiate_call", {**args, "confirmation_token": token}))
        async with Client(http_transport(url, "sandbox-tenant-mette-2")) as session:  # Mette's other token
            other = error_of(await session.call_tool("initiate_call", {**args, "confirmation_token": token}))
        async with Client(http_transport(url, "sandbox-admin")) as session:
            done = await session.call_tool("initiate_call", {**args, "confirmation_token": token})
    assert jonas["code"] == "refused" and "another account" in jonas["message"]
    assert other["code"] == "refused" and "another client of this account" in other["message"]
    assert not done.is_error
    dials = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert [r["token_fp"] for r in dials] == [fingerprint("sandbox-admin")]


@pytest.mark.parametrize("transport", ["streamable HTTP", "SSE"])
async def test_a_preview_token_works_only_in_the_mcp_session_that_was_given_it(sandbox, tmp_path, transport):
    """2025-11-25 sessions over real sockets: the same credential in another session is refused."""
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path, policy=Policy(costly="preview"))
    connect_to = http_transport if transport == "streamable HTTP" else sse_transport
    args = {"to_number": "+45 28 11 44 77"}
    with serve_http(settings, HttpOptions(auth="passthrough")) as url:
        async with Client(connect_to(url, "sandbox-admin"), mode="legacy") as given:
            result = await given.call_tool("initiate_call", args)
            token = result.structured_content["confirmation"]["token"]
            async with Client(connect_to(url, "sandbox-admin"), mode="legacy") as another:
                elsewhere = error_of(
                    await another.call_tool("initiate_call", {**args, "confirmation_token": token})
                )
            here = await given.call_tool("initiate_call", {**args, "confirmation_token": token})
    assert elsewhere["code"] == "refused" and "another session" in elsewhere["message"]
    assert not here.is_error
    assert [r["path"] for r in sandbox.requests() if r["method"] == "POST"] == ["/api/v2/switch/dial"]


async def test_stateless_mode(sandbox, tmp_path):
    """Stateless gives up the handshake era's back-channel: legacy clients cannot be asked, so they
    are offered no gated tool (and refused one); 2026-07-28 clients are asked as ever."""
    options = HttpOptions(auth="api-key", api_keys=KEYS, stateless=True)
    with serve_http(settings_for(sandbox.url, state_dir=tmp_path, policy=Policy()), options) as url:
        async with Client(
            http_transport(url, KEYS[0]), mode="legacy", elicitation_callback=answering("accept")
        ) as s:
            legacy_tools = {t.name for t in (await s.list_tools()).tools}
            legacy = await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
            listed = await s.call_tool("list_tags", {})
        async with Client(
            http_transport(url, KEYS[0]), mode="auto", elicitation_callback=answering("accept")
        ) as s:
            modern_tools = {t.name for t in (await s.list_tools()).tools}
            modern = await s.call_tool("initiate_call", {"to_number": "+45 28 11 44 77"})
    assert "initiate_call" not in legacy_tools and "initiate_call" in modern_tools
    assert error_of(legacy)["code"] == "refused" and not listed.is_error
    assert not modern.is_error  # 2026-07-28 elicitation needs no back-channel
    assert [r["path"] for r in sandbox.requests() if r["method"] == "POST"] == ["/api/v2/switch/dial"]


@pytest.mark.process  # the command
async def test_the_cli_serves_http_and_stops_on_sigterm(tmp_path):
    exe = str(Path(sys.executable).with_name("relatel-mcp"))
    process = subprocess.Popen(
        [exe, "serve", "--sandbox", "--transport", "http", "--port", "0", "--state-dir", str(tmp_path)],
        env=env(RELATEL_MCP_API_KEYS=KEYS[0]), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said = []
    try:
        line = ""
        while "serving MCP at" not in line:
            line = process.stderr.readline()
            assert line, "the server exited before serving"
            said.append(line)
        url = re.search(r"(http://127\.0\.0\.1:\d+)/mcp", line).group(1)
        async with Client(http_transport(url, KEYS[0])) as session:
            result = await session.call_tool("get_current_employee", {})
        assert result.structured_content["employee"]["name"] == "Mette Hansen"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 128 + signal.SIGTERM  # shut down in order, then 143 (cli._Stop)
        HYGIENE.scan_stderr(
            "relatel-mcp serve --sandbox --transport http", "".join(said) + process.stderr.read()
        )
