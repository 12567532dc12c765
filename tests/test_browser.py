"""OAuth in a real browser: headless Chromium (Debian's package) driven by Playwright, the MCP
SDK's own OAuth client as the MCP client, `serve --auth oauth` in front of the sandbox.

From the first 401 through discovery, dynamic registration, both consent pages (ours, then
Relatel's, clicked in the browser), the callback and the token exchange, to tools/list and a tool
call that reaches Relatel with that employee's token; two users logged in at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.oauth.relatel import RelatelApp
from relatel_mcp.sandbox.oauth import CLIENT_ID, CLIENT_SECRET
from relatel_mcp.web.serving import UvicornServer

from .services import missing
from .support import COUNT_WITHOUT_HUMAN, offered_count, serve_http, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, without a GPU, and with nothing reaching for the internet.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]  # fmt: skip


class Memory:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def log_in_and_call(url: str, browser: Any, employee: str) -> dict[str, Any]:
    """One user: an MCP client with the SDK's OAuth, its user clicking through in the browser."""
    answered: asyncio.Future[AuthorizationCodeResult] = asyncio.get_running_loop().create_future()

    async def callback(request: Request) -> HTMLResponse:  # the MCP client's own redirect URI
        answered.set_result(
            AuthorizationCodeResult(
                code=request.query_params["code"], state=request.query_params.get("state")
            )
        )
        return HTMLResponse("<p>You can close this window.</p>")

    loopback = UvicornServer(Starlette(routes=[Route("/callback", callback)]), "127.0.0.1", 0)
    serving = asyncio.create_task(loopback.serve())
    await loopback.wait_started()
    context = await browser.new_context()
    page = await context.new_page()
    seen: dict[str, Any] = {}

    async def redirect_handler(authorization_url: str) -> None:
        await page.goto(authorization_url)  # relatel-mcp's consent page for this client
        seen["consent"] = await page.content()
        await page.click("button[value=allow]")
        await page.wait_for_url("**/api/v2/authorize**")  # Relatel's (the sandbox's) page
        await page.check(f"input[name=employee][value={employee}]")
        await page.click("button[value=allow]")
        await page.wait_for_url(f"{loopback.url}/callback**")

    async def callback_handler() -> AuthorizationCodeResult:
        return await asyncio.wait_for(answered, 30)

    provider = OAuthClientProvider(
        server_url=f"{url}/mcp",
        client_metadata=OAuthClientMetadata(
            redirect_uris=[f"{loopback.url}/callback"],
            client_name="Browser test client",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=Memory(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    try:
        async with (
            httpx2.AsyncClient(auth=provider, timeout=60) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as session,
        ):
            tools = (await session.list_tools()).tools
            me = await session.call_tool("get_current_employee", {})
    finally:
        await context.close()
        loopback.stop()
        await serving
    return {
        "tools": len(tools),
        "name": me.structured_content["employee"]["name"],
        "consent": seen["consent"],
    }


async def test_two_users_log_in_through_chromium_with_the_sdk_oauth_client(sandbox, tmp_path):
    if not Path(CHROMIUM).exists():
        missing("Chromium (Debian package chromium)")
    from playwright.async_api import async_playwright

    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    options = HttpOptions(auth="oauth", oauth_app=RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET))
    with serve_http(settings, options) as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                mette, jonas = await asyncio.gather(
                    log_in_and_call(url, browser, "sandbox-admin"),
                    log_in_and_call(url, browser, "sandbox-employee"),
                )
            finally:
                await browser.close()
    assert (mette["name"], jonas["name"]) == ("Mette Hansen", "Jonas Nielsen")
    assert mette["tools"] == COUNT_WITHOUT_HUMAN  # no elicitation in this client: no gated tools
    assert jonas["tools"] == offered_count("admin", human=False)  # each user's own list: Jonas is no admin
    assert "Browser test client" in mette["consent"] and "/callback" in mette["consent"]
    issued = {
        hashlib.sha256(t.encode()).hexdigest()[:16]: who for t, who in sandbox.state.oauth_tokens.items()
    }
    callers = {issued.get(r["token_fp"]) for r in sandbox.requests() if r["path"] == "/api/v2/employee"}
    assert callers == {(1, 1), (1, 2)}  # each upstream request carried its own user's Relatel token
