"""Resources through a real MCP client, in both protocol eras: download_voicemail links the
recording instead of carrying it, the link followed gives the sandbox's bytes, contacts and
employees read as documents, and every read is the tenant's own, a GET, and whole or nothing."""

from __future__ import annotations

import base64
import json
import logging

import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from relatel_mcp.core import catalog
from relatel_mcp.core.errors import ToolError
from relatel_mcp.core.request import UpstreamRequest
from relatel_mcp.core.results import MAX_AUDIO_BYTES
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.resources import TEMPLATES
from relatel_mcp.upstream.client import RelatelClient, Tenant

from .hygiene import HYGIENE_TOKEN
from .support import (
    MODES,
    connect,
    error_of,
    http_transport,
    serve_http,
    settings_for,
    sse_transport,
    toolkit_for,
)

pytestmark = pytest.mark.anyio

RECORDING_1 = "relatel://voicemails/1/recording"


def links(result: types.CallToolResult) -> list[types.ResourceLink]:
    return [c for c in result.content if isinstance(c, types.ResourceLink)]


def audio(result: types.CallToolResult) -> list[types.AudioContent]:
    return [c for c in result.content if isinstance(c, types.AudioContent)]


def sound(sandbox, id: int = 1, token: str = "sandbox-admin") -> bytes:
    return sandbox.api(token).get(f"/api/v2/voice_mails/{id}/sound").raise_for_status().content


def upstream(sandbox, under: str = "/api/v2/voice_mails") -> list[tuple[str, str]]:
    """The API requests for voicemails (or `under`), leaving out the account reads a new server
    makes to learn what it can list."""
    return [(r["method"], r["path"]) for r in sandbox.requests() if r["path"].startswith(under)]


# ------------------------------------------------------------------ the tool: facts and a link


@pytest.mark.parametrize("mode", MODES)
async def test_download_voicemail_says_what_the_recording_is_and_links_it(sandbox, mode):
    expected, data = sandbox.api().get("/api/v2/voice_mails/1").json(), sound(sandbox)
    async with connect(sandbox.url, mode=mode) as session:
        sandbox.clear_requests()
        result = await session.call_tool("download_voicemail", {"id": 1})
    assert not result.is_error, result
    assert audio(result) == []  # no megabytes in the model's context
    [link] = links(result)
    assert (link.uri, link.mime_type, link.size) == (RECORDING_1, "audio/mpeg", len(data))
    facts = result.structured_content["voicemail"]
    assert facts["from_number"] == expected["from_number"]
    assert facts["created_at"] == expected["created_at"]
    assert facts["duration_seconds"] == expected["duration"]
    assert facts["recording"] == {"uri": RECORDING_1, "mime_type": "audio/mpeg", "size_bytes": len(data)}
    assert RECORDING_1 in result.content[0].text
    # Who and when first, then the recording: reads only.
    assert upstream(sandbox) == [("GET", "/api/v2/voice_mails/1"), ("GET", "/api/v2/voice_mails/1/sound")]


@pytest.mark.parametrize("mode", MODES)
async def test_the_link_followed_gives_the_recording_byte_for_byte(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        [link] = links(await session.call_tool("download_voicemail", {"id": 2}))
        read = await session.read_resource(link.uri)
    [contents] = read.contents
    assert isinstance(contents, types.BlobResourceContents)
    assert contents.mime_type == "audio/mpeg" and str(contents.uri) == link.uri
    assert base64.b64decode(contents.blob) == sound(sandbox, 2)


async def test_a_download_is_logged_as_sent_with_its_status(sandbox, caplog):
    async with connect(sandbox.url) as session:
        with caplog.at_level(logging.INFO, logger="relatel_mcp.calls"):
            await session.call_tool("download_voicemail", {"id": 1})
    [line] = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == "tool_call"]
    assert (line["tool"], line["decision"], line["status"]) == ("download_voicemail", "sent", 200)


async def test_inline_puts_the_audio_in_the_result_too(sandbox):
    data = sound(sandbox)
    async with connect(sandbox.url) as session:
        result = await session.call_tool("download_voicemail", {"id": 1, "inline": True})
        sandbox.clear_requests()
        wrong = error_of(await session.call_tool("download_voicemail", {"id": 1, "inline": "yes"}))
    [clip] = audio(result)
    assert base64.b64decode(clip.data) == data and clip.mime_type == "audio/mpeg"
    assert len(links(result)) == 1
    assert wrong["code"] == "invalid_argument" and wrong["field"] == "inline"
    assert upstream(sandbox) == []


async def test_a_voicemail_that_is_not_there_is_not_found_and_nothing_is_downloaded(sandbox):
    async with connect(sandbox.url) as session:
        sandbox.clear_requests()
        error = error_of(await session.call_tool("download_voicemail", {"id": 999}))
    assert error["code"] == "not_found"
    assert ("GET", "/api/v2/voice_mails/999/sound") not in upstream(sandbox)


# ------------------------------------------------------------------ templates and reads


@pytest.mark.parametrize("mode", MODES)
async def test_templates_are_listed_with_their_media_types(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:
        templates = (await session.list_resource_templates()).resource_templates
        resources = (await session.list_resources()).resources
    assert {t.uri_template: t.mime_type for t in templates} == {
        "relatel://voicemails/{id}/recording": "audio/mpeg",
        "relatel://contacts/{id}": "application/json",
        "relatel://employees/{id}": "application/json",
    }
    assert [str(r.uri) for r in resources] == ["relatel://audit"]


async def test_toolsets_without_a_read_leave_out_its_template_and_refuse_its_reads(sandbox):
    async with connect(sandbox.url, toolsets=frozenset({"contacts"})) as session:
        templates = (await session.list_resource_templates()).resource_templates
        sandbox.clear_requests()
        with pytest.raises(MCPError) as refused:
            await session.read_resource(RECORDING_1)
    assert [t.uri_template for t in templates] == ["relatel://contacts/{id}"]
    assert "relatel://contacts/{id}" in str(refused.value)
    assert upstream(sandbox, "/api/v2/") == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("uri", "tool"), [("relatel://contacts/1", "get_contact"), ("relatel://employees/2", "get_employee")]
)
async def test_a_contact_and_an_employee_read_as_their_get_tool_answers_in_full(sandbox, mode, uri, tool):
    async with connect(sandbox.url, mode=mode) as session:
        got = await session.call_tool(tool, {"id": int(uri.rsplit("/", 1)[1]), "detail": "full"})
        sandbox.clear_requests()
        [contents] = (await session.read_resource(uri)).contents
    assert isinstance(contents, types.TextResourceContents) and contents.mime_type == "application/json"
    assert json.loads(contents.text) == got.structured_content
    assert upstream(sandbox, uri.replace("relatel://", "/api/v2/")) == [
        ("GET", uri.replace("relatel://", "/api/v2/"))
    ]


@pytest.mark.parametrize(
    "uri", ["relatel://contacts/x", "relatel://contacts/1/../2", "relatel://nothing", "file:///etc/passwd"]
)
async def test_a_uri_of_no_template_is_refused_and_nothing_is_sent(sandbox, uri):
    async with connect(sandbox.url) as session:
        sandbox.clear_requests()
        with pytest.raises(MCPError) as refused:
            await session.read_resource(uri)
    assert refused.value.error.code == types.INVALID_PARAMS
    assert upstream(sandbox, "/api/v2/contacts") == []


async def test_a_read_is_the_tenants_own(sandbox):
    """Company 2's token reads nothing of company 1's; Relatel (the sandbox) says not found."""
    mine = sound(sandbox, 101, token="sandbox-starter")
    async with connect(sandbox.url, token="sandbox-starter") as session:
        [own] = (await session.read_resource("relatel://voicemails/101/recording")).contents
        for other in (RECORDING_1, "relatel://contacts/1", "relatel://employees/1"):
            with pytest.raises(MCPError) as refused:
                await session.read_resource(other)
            assert refused.value.error.code == -32002, other  # the specification's resource not found
    assert base64.b64decode(own.blob) == mine


async def test_a_broken_download_gives_an_error_never_part_of_the_recording(sandbox):
    sandbox.fault(path="/api/v2/voice_mails/1/sound", drop="after", count=10)
    async with connect(sandbox.url, retries=1) as session:
        with pytest.raises(MCPError) as failed:
            await session.read_resource(RECORDING_1)
        error = error_of(await session.call_tool("download_voicemail", {"id": 1}))
    assert failed.value.error.code == types.INTERNAL_ERROR
    assert error["code"] in ("unreachable", "connection_lost")


async def test_a_token_relatel_refuses_is_said_with_the_hint_and_never_shown(sandbox):
    async with connect(sandbox.url, token="sandbox-tenant-REFUSED-but-unknown") as session:
        sandbox.fault(path="/api/v2/contacts/1", status=401)
        with pytest.raises(MCPError) as refused:
            await session.read_resource("relatel://contacts/1")
    assert "REFUSED" not in str(refused.value)
    assert "RELATEL_TOKEN" in str(refused.value)


# ------------------------------------------------------------------ size: refused, never cut


@pytest.mark.parametrize("declared", [True, False])
async def test_a_recording_over_the_limit_is_refused_whole(declared):
    """A body over the limit is refused as it arrives, declared or not (a fault the sandbox
    cannot produce: its recordings are seconds long)."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = b"\xff" * (MAX_AUDIO_BYTES + 1)
        stream = httpx2.ByteStream(body) if declared else _chunks(body)
        return httpx2.Response(200, stream=stream, headers={"content-type": "audio/mpeg"})

    client = RelatelClient("https://relatel.invalid", transport=httpx2.MockTransport(answer))
    request = UpstreamRequest("GET", "/api/v2/voice_mails/1/sound")
    with pytest.raises(ToolError) as refused:
        await client.send(request, Tenant("t" * 20), idempotent=True, max_bytes=MAX_AUDIO_BYTES)
    await client.aclose()
    assert refused.value.code == "too_large" and f"{MAX_AUDIO_BYTES:,}" in refused.value.message


def _chunks(body: bytes) -> httpx2.AsyncByteStream:
    class Chunks(httpx2.AsyncByteStream):
        async def __aiter__(self):
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

    return Chunks()


# ------------------------------------------------------------------ the Toolkit: facts, not base64


async def test_the_toolkit_gives_the_facts_and_reads_the_recording_on_demand(sandbox):
    async with toolkit_for(sandbox.url) as toolkit:
        data = await toolkit.call("download_voicemail", {"id": 1})
        read = await toolkit.read_resource(data["voicemail"]["recording"]["uri"])
    assert "audio" not in data and len(json.dumps(data)) < 2_000
    assert "read_resource" in data["fetch"]
    assert read == sound(sandbox)


def test_every_template_is_a_read_and_nothing_else():
    """A resource read sends its template's operation only: each is a GET the catalogue calls a read."""
    for template in TEMPLATES:
        op = catalog.named(template.operation)
        assert (op.method, op.kind, op.name) == ("GET", "read", template.tool), template


# ------------------------------------------------------------------ over real transports


@pytest.mark.parametrize(("transport", "mode"), [("http", "legacy"), ("http", "auto"), ("sse", "legacy")])
async def test_over_http_each_bearer_reads_only_its_own_accounts_recordings(
    sandbox, tmp_path, transport, mode
):
    """Passthrough: each request's bearer is its Relatel token. The link a tool gave one account
    is not another's to read."""
    connect_to = http_transport if transport == "http" else sse_transport
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    mine, theirs = sound(sandbox, 1), sound(sandbox, 101, token="sandbox-starter")
    with serve_http(settings, HttpOptions(auth="passthrough")) as url:
        async with Client(connect_to(url, HYGIENE_TOKEN), mode=mode) as admin:
            [link] = links(await admin.call_tool("download_voicemail", {"id": 1}))
            [own] = (await admin.read_resource(link.uri)).contents
        async with Client(connect_to(url, "sandbox-starter"), mode=mode) as starter:
            with pytest.raises(MCPError) as refused:
                await starter.read_resource(link.uri)
            [other] = (await starter.read_resource("relatel://voicemails/101/recording")).contents
    assert base64.b64decode(own.blob) == mine
    assert refused.value.error.code == -32002
    assert base64.b64decode(other.blob) == theirs
