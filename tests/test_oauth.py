"""OAuth 2.0, end to end: the sandbox speaking Relatel's flow, `relatel-mcp login` on this
machine, and `serve --auth oauth` as its MCP clients' authorization server, with every refusal
the flow must make. The browser here is an HTTP client that reads each page and submits its form
as a user would; tests/test_browser.py does it once more in Chromium, with the SDK's OAuth client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.auth import OAuthClientInformationFull

from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.oauth import server as provider
from relatel_mcp.oauth.clients import RegistrationLimits
from relatel_mcp.oauth.relatel import RelatelApp
from relatel_mcp.policy import Policy
from relatel_mcp.policy.rules import Budgets
from relatel_mcp.policy.seal import load_secret
from relatel_mcp.sandbox.oauth import CLIENT_ID, CLIENT_SECRET
from relatel_mcp.store import open_store

from .hygiene import HYGIENE
from .services import Postgres, free_port
from .stores import STORES
from .support import EXE, INITIALIZE, MCP_HEADERS, env, error_of, run, serve_http, settings_for

pytestmark = pytest.mark.anyio

CLIENT_REDIRECT = "http://127.0.0.1:9/callback"  # where our MCP client is sent back (never fetched)


def fields_of(page: str) -> dict[str, str]:
    """A form's hidden and preset fields, as a browser would submit them."""
    values = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    checked = re.search(r'name="employee" value="([^"]+)" checked', page)
    return {**values, **({"employee": checked.group(1)} if checked else {})}


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def answer_consent(http: httpx2.AsyncClient, url: str, page: httpx2.Response, decision: str = "allow",
                         **headers: str) -> httpx2.Response:  # fmt: skip
    """Submit our consent page's form as the browser that shows it does: from the page's origin
    (`headers` may say otherwise)."""
    form = {**fields_of(page.text), "decision": decision}
    return await http.post("/oauth/consent", data=form, headers={"Origin": url, **headers})


# ------------------------------------------------------------------ the sandbox speaks Relatel's OAuth


async def relatel_code(
    authorize_url: str, *, employee: str | None = None, decision: str = "allow"
) -> dict[str, list[str]]:
    """Open Relatel's authorize page, choose, submit: the query it redirects to."""
    async with httpx2.AsyncClient(follow_redirects=False) as browser:
        page = await browser.get(authorize_url)
        assert page.status_code == 200, page.text
        form = {**fields_of(page.text), "decision": decision, **({"employee": employee} if employee else {})}
        answer = await browser.post(authorize_url.split("?")[0], data=form)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)


async def test_the_sandbox_grants_a_token_for_the_chosen_employee_once(sandbox):
    app = RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET)
    redirect = "http://127.0.0.1:8765/callback"
    page = await httpx2.AsyncClient().get(app.authorize_url(redirect, "s1"))
    assert 'value="sandbox-admin" checked' in page.text and "<script" not in page.text  # plain form
    got = await relatel_code(app.authorize_url(redirect, "s1"), employee="sandbox-employee")
    assert got["state"] == ["s1"]
    token = await app.exchange(got["code"][0], redirect)
    me = sandbox.client(token).get("/api/v2/employee").json()["employee"]
    assert me["name"] == "Jonas Nielsen"
    with pytest.raises(Exception, match="invalid_grant"):  # a code works once
        await app.exchange(got["code"][0], redirect)
    again = await relatel_code(app.authorize_url(redirect, "s2"))
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "authorization_code",
            "redirect_uri": redirect, "code": again["code"][0]}  # fmt: skip
    as_form = httpx2.post(f"{sandbox.url}/api/v2/token", data=form)  # a form body works too
    assert (
        as_form.status_code == 200
        and sandbox.client(as_form.json()["access_token"]).get("/api/v2/employee").json()["employee"]["name"]
        == "Mette Hansen"
    )


async def test_the_sandbox_refuses_what_it_must(sandbox):
    app = RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET)
    redirect = "http://127.0.0.1:8765/callback"
    denied = await relatel_code(app.authorize_url(redirect, "s"), decision="deny")
    unregistered = httpx2.get(
        RelatelApp(sandbox.url, CLIENT_ID, "").authorize_url("https://evil.example/cb", "s")
    )
    wrong_app = httpx2.get(RelatelApp(sandbox.url, "someone-else", "").authorize_url(redirect, "s"))
    code = (await relatel_code(app.authorize_url(redirect, "s")))["code"][0]
    with pytest.raises(Exception, match="invalid_client"):
        await RelatelApp(sandbox.url, CLIENT_ID, "wrong-secret").exchange(code, redirect)
    assert await app.exchange(code, redirect)  # the app's own secret still gets it, once
    assert denied == {"error": ["access_denied"], "state": ["s"]}
    assert unregistered.status_code == wrong_app.status_code == 400  # an error page, never a redirect
    assert "location" not in unregistered.headers


async def test_destroyed_tokens_are_refused(sandbox):
    app = RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET)
    redirect = "http://127.0.0.1:8765/callback"
    token = await app.exchange((await relatel_code(app.authorize_url(redirect, "s")))["code"][0], redirect)
    assert sandbox.client(token).get("/api/v2/employee").status_code == 200
    assert sandbox.control.delete("/_sandbox/oauth/tokens", params={"employee_id": 1}).json() == {
        "destroyed": 1
    }
    assert sandbox.client(token).get("/api/v2/employee").status_code == 401


# ------------------------------------------------------------------ relatel-mcp login


@dataclass
class Login:
    process: asyncio.subprocess.Process
    url: str
    redirect: str


async def start_login(sandbox: Any, state_dir: Any, *extra: str) -> Login:
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    process = await asyncio.create_subprocess_exec(
        EXE, "login", "--no-browser", "--redirect-uri", redirect, "--base-url", sandbox.url,
        "--state-dir", str(state_dir), "--timeout", "30", *extra,
        env=env(RELATEL_CLIENT_ID=CLIENT_ID, RELATEL_CLIENT_SECRET=CLIENT_SECRET),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    while not (line := (await process.stdout.readline()).decode().strip()).startswith("http"):
        assert line or process.returncode is None, "login exited before printing the URL"
    return Login(process, line, redirect)


async def finish(login: Login) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(login.process.communicate(), 30)
    HYGIENE.scan_stderr("relatel-mcp login", err.decode())
    return login.process.returncode or 0, out.decode(), err.decode()


async def test_login_then_a_stdio_session_without_relatel_token(sandbox, tmp_path):
    login = await start_login(sandbox, tmp_path)
    assert login.url.startswith(f"{sandbox.url}/api/v2/authorize?") and "state=" in login.url
    back = await relatel_code(login.url)  # the user allows, as Mette (preselected)
    async with httpx2.AsyncClient() as browser:  # the browser follows the redirect to the loopback
        landed = await browser.get(login.redirect, params={k: v[0] for k, v in back.items()})
    code, out, err = await finish(login)
    assert landed.status_code == 200 and code == 0, err
    assert "Logged in as Mette Hansen (employee 1 of company 1)" in out
    stored = tmp_path / "login.json"
    assert (
        stat.S_IMODE(stored.stat().st_mode) == 0o600
        and json.loads(stored.read_text())["base_url"] == sandbox.url
    )
    whoami = run([EXE, "whoami", "--base-url", sandbox.url, "--state-dir", str(tmp_path)], env=env(),
                 timeout=30)  # fmt: skip
    assert whoami.returncode == 0 and "Mette Hansen" in whoami.stdout
    params = StdioServerParameters(command=EXE, args=[], env=env(RELATEL_BASE_URL=sandbox.url,
                                                                 RELATEL_MCP_STATE_DIR=str(tmp_path)))  # fmt: skip
    async with Client(params, mode="legacy") as session:
        me = await session.call_tool("get_current_employee", {})
        sandbox.control.delete("/_sandbox/oauth/tokens")  # the user destroys their tokens at Relatel
        gone = await session.call_tool("get_current_employee", {})
    assert me.structured_content["employee"]["name"] == "Mette Hansen"
    assert error_of(gone)["code"] == "unauthorized" and "relatel-mcp login" in error_of(gone)["hint"]
    refused = run([EXE, "whoami", "--base-url", sandbox.url, "--state-dir", str(tmp_path)], env=env(),
                  timeout=30)  # fmt: skip
    assert refused.returncode == 2 and "run relatel-mcp login again" in refused.stderr
    logout = run([EXE, "logout", "--state-dir", str(tmp_path)], env=env(), timeout=30)
    assert logout.returncode == 0 and not stored.exists()


async def test_a_debug_log_of_a_login_holds_neither_the_app_secret_nor_the_code(sandbox, tmp_path):
    """Relatel's token endpoint takes the app's secret and the code in its query string (as its
    docs say); at --log-level debug the HTTP library would log that URL whole."""
    login = await start_login(sandbox, tmp_path, "--log-level", "debug")
    back = await relatel_code(login.url)
    async with httpx2.AsyncClient() as browser:
        await browser.get(login.redirect, params={k: v[0] for k, v in back.items()})
    code, out, err = await finish(login)
    assert code == 0 and "Logged in as Mette Hansen" in out, err
    assert '"level": "debug"' in err  # the libraries did speak
    assert CLIENT_SECRET not in err + out and back["code"][0] not in err + out


async def test_login_refuses_an_answer_with_another_state(sandbox, tmp_path):
    login = await start_login(sandbox, tmp_path)
    back = await relatel_code(login.url)
    async with httpx2.AsyncClient() as browser:  # a redirect forged by someone who got a code elsewhere
        landed = await browser.get(login.redirect, params={"code": back["code"][0], "state": "forged"})
    code, _, err = await finish(login)
    assert landed.status_code == 400
    assert code == 2 and "did not carry this login's state" in err and "Traceback" not in err
    assert not (tmp_path / "login.json").exists()


# ------------------------------------------------------------------ serve --auth oauth


def oauth_options(sandbox: Any, **options: Any) -> HttpOptions:
    return HttpOptions(auth="oauth", oauth_app=RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET), **options)


@pytest.fixture
def oauth_server(sandbox, tmp_path):
    with serve_http(settings_for(sandbox.url, token=None, state_dir=tmp_path), oauth_options(sandbox)) as url:
        yield url


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class Flow:
    """One MCP client's authorization against relatel-mcp, driven as a client and its user would."""

    url: str
    confidential: bool = False  # a client with a secret (client_secret_post), else a public one
    client_id: str = ""
    client_secret: str = ""
    verifier: str = ""

    async def register(self, http: httpx2.AsyncClient) -> None:
        method = "client_secret_post" if self.confidential else "none"
        registered = await http.post("/register", json={"redirect_uris": [CLIENT_REDIRECT], "client_name": "Test client",
                                                        "token_endpoint_auth_method": method})  # fmt: skip
        self.client_id = registered.json()["client_id"]
        self.client_secret = registered.json().get("client_secret") or ""

    def credentials(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            **({"client_secret": self.client_secret} if self.confidential else {}),
        }

    async def authorize(self, http: httpx2.AsyncClient, *, employee: str = "sandbox-admin",
                        resource: str | None = None, redirect_uri: str = CLIENT_REDIRECT) -> httpx2.Response:  # fmt: skip
        """Up to the redirect back to the client (or the first refusal)."""
        self.verifier, challenge = pkce()
        params = {"client_id": self.client_id, "response_type": "code", "redirect_uri": redirect_uri,
                  "code_challenge": challenge, "code_challenge_method": "S256", "state": "client-state",
                  "resource": resource or f"{self.url}/mcp"}  # fmt: skip
        answer = await http.get("/authorize", params=params)
        if not answer.headers.get("location", "").startswith(f"{self.url}/oauth/consent"):
            return answer
        consent = await http.get(answer.headers["location"])
        to_relatel = await answer_consent(http, self.url, consent)
        back = await relatel_code(to_relatel.headers["location"], employee=employee)
        return await http.get("/oauth/callback", params={k: v[0] for k, v in back.items()})

    async def token(self, http: httpx2.AsyncClient, code: str, verifier: str | None = "") -> httpx2.Response:
        """The code exchange, with the flow's PKCE verifier (or `verifier`; None sends none)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT,
                **self.credentials(), "code_verifier": verifier or self.verifier}  # fmt: skip
        if verifier is None:
            del form["code_verifier"]
        return await http.post("/token", data=form)

    async def code(self, http: httpx2.AsyncClient, employee: str = "sandbox-admin") -> str:
        """An authorization code, as the client reads it off the redirect back."""
        back = await self.authorize(http, employee=employee)
        return parse_qs(urlsplit(back.headers["location"]).query)["code"][0]

    async def log_in(self, http: httpx2.AsyncClient, employee: str = "sandbox-admin") -> dict[str, Any]:
        await self.register(http)
        return (await self.token(http, await self.code(http, employee))).json()


MCP = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
       "Mcp-Method": "tools/call", "Mcp-Name": "get_current_employee"}  # fmt: skip
WHOAMI = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "get_current_employee", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}}}  # fmt: skip


async def whoami(http: httpx2.AsyncClient, access_token: str) -> httpx2.Response:
    return await http.post("/mcp", json=WHOAMI, headers={**MCP, "Authorization": f"Bearer {access_token}"})


def test_serve_auth_oauth_needs_no_token_of_its_own(sandbox, tmp_path):
    """Each request acts as the user who logged in: the operator's own token is neither asked for
    nor used. (And --registrations-per-client sets the per-address limit of /register.)"""
    port = free_port()
    process = subprocess.Popen(
        [EXE, "serve", "--transport", "http", "--auth", "oauth", "--port", str(port), "--state-dir", str(tmp_path),
         "--registrations-per-client", "1"],
        env=env(HOME=str(tmp_path), RELATEL_BASE_URL=sandbox.url, RELATEL_CLIENT_ID=CLIENT_ID,
                RELATEL_CLIENT_SECRET=CLIENT_SECRET),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                metadata = httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server")
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.1)
        assert metadata.json()["issuer"] == f"http://127.0.0.1:{port}"
        body = {"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"}
        statuses = [httpx2.post(f"http://127.0.0.1:{port}/register", json=body).status_code for _ in range(2)]
        assert statuses == [201, 429]
    finally:
        process.terminate()
        process.wait(10)
        HYGIENE.scan_stderr("relatel-mcp serve --auth oauth", process.stderr.read())


async def test_the_server_advertises_its_metadata_and_challenges_with_it(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        challenge = await http.post("/mcp", json=WHOAMI, headers=MCP)
        resource = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert challenge.status_code == 401
    assert (
        f'resource_metadata="{oauth_server}/.well-known/oauth-protected-resource/mcp"'
        in challenge.headers["www-authenticate"]
    )
    assert resource["resource"] == f"{oauth_server}/mcp" and resource["authorization_servers"] == [
        oauth_server
    ]
    assert server["issuer"] == oauth_server and server["code_challenge_methods_supported"] == ["S256"]
    assert server["registration_endpoint"] == f"{oauth_server}/register" and "revocation_endpoint" in server


async def test_two_users_log_in_and_each_call_carries_their_own_relatel_token(sandbox, oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        mette = await Flow(oauth_server).log_in(http, "sandbox-admin")
        jonas = await Flow(oauth_server).log_in(http, "sandbox-employee")
        sandbox.clear_requests()
        answers = await asyncio.gather(*(whoami(http, t["access_token"]) for t in (mette, jonas) * 5))
    names = [json.loads(a.text)["result"]["structuredContent"]["employee"]["name"] for a in answers]
    assert names == ["Mette Hansen", "Jonas Nielsen"] * 5
    issued = {fingerprint(token): who for token, who in sandbox.state.oauth_tokens.items()}
    seen = {issued.get(r["token_fp"]) for r in sandbox.requests() if r["path"] == "/api/v2/employee"}
    assert seen == {(1, 1), (1, 2)}  # Relatel's own tokens went upstream: never relatel-mcp's
    assert not any(r["token_fp"] in (fingerprint(mette["access_token"]), fingerprint(jonas["access_token"]))
                   for r in sandbox.requests())  # fmt: skip


@pytest.mark.parametrize("verifier", ["a-verifier-that-is-not-the-one-the-challenge-was-made-from", None])
async def test_a_wrong_or_missing_pkce_verifier_gets_no_token(oauth_server, verifier):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        await flow.register(http)
        code = await flow.code(http)
        refused = await flow.token(http, code, verifier=verifier)
        then = await flow.token(http, code)
    assert refused.status_code == 400 and refused.json()["error"] in ("invalid_grant", "invalid_request")
    assert "access_token" not in refused.text
    assert then.status_code == 200  # the client that holds the verifier still gets its token


async def consent_page(attacker: httpx2.AsyncClient, url: str) -> httpx2.Response:
    """An attacker's own client, registered, up to our consent page for it (in their browser)."""
    flow = Flow(url)
    await flow.register(attacker)
    flow.verifier, challenge = pkce()
    started = await attacker.get("/authorize", params={
        "client_id": flow.client_id, "response_type": "code", "redirect_uri": CLIENT_REDIRECT,
        "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"})  # fmt: skip
    consent = urlsplit(started.headers["location"])  # on the server's public URL
    return await attacker.get(f"{consent.path}?{consent.query}")


async def test_another_site_cannot_submit_the_consent_for_the_user(oauth_server):
    """Consent CSRF: an attacker starts a flow for their own client and has the victim's browser
    post "allow" to it from another site. Without the page's SameSite cookie it is refused, and the
    request is still there for whoever saw the page."""
    async with httpx2.AsyncClient(base_url=oauth_server) as attacker:
        page = await consent_page(attacker, oauth_server)
        form = fields_of(page.text)
    async with httpx2.AsyncClient(base_url=oauth_server) as victim:  # no cookie from that page
        forged = await victim.post("/oauth/consent", data={**form, "decision": "allow"})
        guessed = await victim.post("/oauth/consent", data={**form, "nonce": "guess", "decision": "allow"},
                                    cookies={"relatel_mcp_consent": "guess-2"})  # fmt: skip
    assert forged.status_code == guessed.status_code == 403 and "location" not in forged.headers
    assert "set-cookie" in page.headers and "samesite=strict" in page.headers["set-cookie"].lower()


async def test_a_login_someone_else_started_grants_nothing_in_the_victims_browser(sandbox, oauth_server):
    """Confused deputy: the attacker allows on our consent page for their own client and sends the
    Relatel link it led to to the victim, who logs in at Relatel. Back at our callback without the
    cookie of the browser that allowed, nothing is granted and no code goes to the attacker."""
    async with httpx2.AsyncClient(base_url=oauth_server) as attacker:
        consent = await consent_page(attacker, oauth_server)
        to_relatel = await answer_consent(attacker, oauth_server, consent)
    back = await relatel_code(to_relatel.headers["location"], employee="sandbox-admin")  # the victim
    async with httpx2.AsyncClient(base_url=oauth_server) as victim:
        answer = await victim.get("/oauth/callback", params={k: v[0] for k, v in back.items()})
    assert answer.status_code == 403 and "location" not in answer.headers
    assert "another browser" in answer.text
    async with httpx2.AsyncClient(base_url=oauth_server) as attacker_again:  # the state is spent
        replay = await attacker_again.get("/oauth/callback", params={k: v[0] for k, v in back.items()},
                                          cookies=dict(to_relatel.cookies))  # fmt: skip
    assert replay.status_code == 400 and "location" not in replay.headers
    assert "samesite=lax" in to_relatel.headers["set-cookie"].lower()


async def test_a_redirect_uri_that_was_not_registered_gets_an_error_page(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        await flow.register(http)
        answer = await flow.authorize(http, redirect_uri="https://evil.example/steal")
    assert answer.status_code == 400 and "location" not in answer.headers


async def test_a_reused_code_gets_nothing_and_ends_the_grant(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        await flow.register(http)
        code = await flow.code(http)
        first = (await flow.token(http, code)).json()
        assert (await whoami(http, first["access_token"])).status_code == 200
        again = await flow.token(http, code)
        after = await whoami(http, first["access_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert after.status_code == 401  # the code leaked: everything issued from it is revoked


async def test_tokens_are_for_this_server_only(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        await flow.register(http)
        answer = await flow.authorize(http, resource="https://other.example/mcp")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.status_code == 302 and query["error"] == ["invalid_request"]
    assert "issues tokens for" in query["error_description"][0]


async def test_refresh_tokens_rotate_and_a_revoked_or_reused_one_is_refused(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        first = await flow.log_in(http)
        refresh = {"grant_type": "refresh_token", "client_id": flow.client_id}
        second = (await http.post("/token", data={**refresh, "refresh_token": first["refresh_token"]})).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await whoami(http, second["access_token"])).status_code == 200
        reused = await http.post("/token", data={**refresh, "refresh_token": first["refresh_token"]})
        after_reuse = await whoami(http, second["access_token"])
        other_flow = Flow(oauth_server, confidential=True)  # RFC 7009 revocation authenticates the client
        other = await other_flow.log_in(http)
        revoked = await http.post(
            "/revoke", data={"token": other["refresh_token"], **other_flow.credentials()}
        )
        refresh_other = {"grant_type": "refresh_token", **other_flow.credentials()}
        refreshed = await http.post("/token", data={**refresh_other, "refresh_token": other["refresh_token"]})
        access_after = await whoami(http, other["access_token"])
    assert reused.status_code == 400 and after_reuse.status_code == 401  # reuse ends the grant
    assert revoked.status_code == 200, revoked.text
    assert refreshed.status_code == 400 and access_after.status_code == 401


async def test_a_token_destroyed_at_relatel_ends_the_grant(sandbox, oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        tokens = await Flow(oauth_server).log_in(http)
        assert (await whoami(http, tokens["access_token"])).status_code == 200
        sandbox.control.delete("/_sandbox/oauth/tokens")  # the user destroys it at Relatel
        failed = await whoami(http, tokens["access_token"])
        next_request = await whoami(http, tokens["access_token"])
    result = json.loads(failed.text)["result"]
    assert result["isError"] and result["structuredContent"]["error"]["code"] == "unauthorized"
    assert "log in again from your MCP client" in result["structuredContent"]["error"]["hint"]
    assert next_request.status_code == 401 and "resource_metadata" in next_request.headers["www-authenticate"]


# ------------------------------------------------------------------ the consent nonce


async def post_consent(url: str, form: dict[str, str], cookie: str, headers: dict[str, str],
                       nonce: str | None = None) -> httpx2.Response:  # fmt: skip
    """The consent form posted to allow, by a browser holding `cookie`, with exactly `headers`."""
    async with httpx2.AsyncClient(base_url=url, cookies={"relatel_mcp_consent": cookie}) as browser:
        data = {**form, "decision": "allow", **({"nonce": nonce} if nonce is not None else {})}
        return await browser.post("/oauth/consent", data=data, headers=headers)


async def test_the_consent_nonce_is_the_servers_own_for_this_request_and_browser(oauth_server):
    """Cookie tossing: a page on another port on loopback, or on a sibling subdomain, can plant a
    cookie in the victim's browser. A nonce of the attacker's choosing planted as the cookie too,
    or the pair our server made for another request, allows nothing, even posted from our origin;
    the pair our page carries works, once."""
    async with httpx2.AsyncClient(base_url=oauth_server) as attacker:
        first, second = await consent_page(attacker, oauth_server), await consent_page(attacker, oauth_server)
    form, other = fields_of(first.text), fields_of(second.text)
    mine, theirs = first.cookies["relatel_mcp_consent"], second.cookies["relatel_mcp_consent"]
    ours = {"Origin": oauth_server}
    picked = await post_consent(
        oauth_server, form, "picked-by-the-attacker", ours, nonce="picked-by-the-attacker"
    )
    elsewhere = await post_consent(oauth_server, form, theirs, ours, nonce=other["nonce"])
    mixed = await post_consent(oauth_server, form, theirs, ours)  # this request's nonce, another cookie
    issued = await post_consent(oauth_server, form, mine, ours)
    again = await post_consent(oauth_server, form, mine, ours)
    assert picked.status_code == elsewhere.status_code == mixed.status_code == 403
    assert "location" not in picked.headers
    assert issued.status_code == 302 and "/api/v2/authorize?" in issued.headers["location"]
    assert again.status_code == 400  # the request was answered


async def test_an_expired_consent_nonce_is_refused(oauth_server, monkeypatch):
    async with httpx2.AsyncClient(base_url=oauth_server) as browser:
        flow = Flow(oauth_server)
        await flow.register(browser)
        _, challenge = pkce()
        started = await browser.get("/authorize", params={
            "client_id": flow.client_id, "response_type": "code", "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
        monkeypatch.setattr(provider, "CONSENT_SECONDS", 1)  # the nonce of the page, not the request
        stale = await browser.get(started.headers["location"])
        await asyncio.sleep(1.2)
        monkeypatch.undo()
        fresh = await browser.get(started.headers["location"])
    ours = {"Origin": oauth_server}
    late = await post_consent(oauth_server, fields_of(stale.text), stale.cookies["relatel_mcp_consent"], ours)
    in_time = await post_consent(
        oauth_server, fields_of(fresh.text), fresh.cookies["relatel_mcp_consent"], ours
    )
    assert late.status_code == 403 and in_time.status_code == 302


async def test_a_consent_posted_from_another_origin_is_refused(oauth_server):
    """The attacker fetches our page for their own request, plants its cookie in the victim's
    browser and has it post the page's form from their page (another port on loopback, a sibling
    subdomain: same site, so the SameSite cookie goes along). The browser says where the post came
    from, and only our own origin is taken."""
    async with httpx2.AsyncClient(base_url=oauth_server) as attacker:
        page = await consent_page(attacker, oauth_server)
    form, cookie = fields_of(page.text), page.cookies["relatel_mcp_consent"]
    another_port = f"http://127.0.0.1:{urlsplit(oauth_server).port + 1}"  # type: ignore[operator]
    tries = {
        "another port": {"Origin": another_port},
        "another port, fetch metadata": {"Origin": another_port, "Sec-Fetch-Site": "same-site"},
        "sibling subdomain": {"Origin": "https://evil.mcp.example.com", "Sec-Fetch-Site": "same-site"},
        "same site, our Origin claimed": {"Origin": oauth_server, "Sec-Fetch-Site": "same-site"},
        "a null Origin alone": {"Origin": "null"},
        "no word of where from": {},
    }
    refused = {name: (await post_consent(oauth_server, form, cookie, headers)).status_code
               for name, headers in tries.items()}  # fmt: skip
    ours = await post_consent(oauth_server, form, cookie, {"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert refused == dict.fromkeys(tries, 403)
    assert ours.status_code == 302  # the same form and cookie, from our page (Origin null: no-referrer)
    assert page.headers["referrer-policy"] == "same-origin"  # so browsers send our Origin


async def test_on_https_the_flow_cookies_are_host_only(sandbox, tmp_path):
    """Behind https the consent and login cookies are __Host- cookies (Secure, no Domain, Path=/),
    which a sibling subdomain cannot set."""
    public = "https://mcp.example.test"
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    with serve_http(settings, oauth_options(sandbox, public_url=public)) as url:
        async with httpx2.AsyncClient(base_url=url) as browser:
            page = await consent_page(browser, public)
            cookie = page.headers["set-cookie"]
            value = cookie.split(";")[0].split("=", 1)[1]
            onward = await browser.post(
                "/oauth/consent", data={**fields_of(page.text), "decision": "allow"},
                headers={"Origin": public, "Cookie": f"__Host-relatel_mcp_consent={value}"})  # fmt: skip
    assert cookie.startswith("__Host-relatel_mcp_consent=")
    assert {"Path=/", "Secure", "HttpOnly", "SameSite=strict"} <= {p.strip() for p in cookie.split(";")}
    login = onward.headers["set-cookie"]
    assert onward.status_code == 302 and login.startswith("__Host-relatel_mcp_login=")
    assert {"Path=/", "Secure", "HttpOnly", "SameSite=lax"} <= {p.strip() for p in login.split(";")}


# ------------------------------------------------------------------ registration


async def register(http: httpx2.AsyncClient, **metadata: Any) -> httpx2.Response:
    body = {
        "redirect_uris": [CLIENT_REDIRECT],
        "client_name": "Test client",
        "token_endpoint_auth_method": "none",
    }
    return await http.post("/register", json={**body, **metadata})


@pytest.mark.parametrize("uri", [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd",
    "vbscript:msgbox(1)", "http://evil.example/callback", "https://mcp.example.com@evil.example/callback",
    "https://app.example/callback#fragment", "myapp:/callback"])  # fmt: skip
async def test_a_redirect_uri_that_could_reach_others_is_not_registered(oauth_server, uri):
    """Where a denial or a code would send the user's browser: only somewhere the client alone
    can receive it (RFC 8252). A private-use scheme must be a reversed domain name (§7.1), or an
    MCP client's own (cursor:, vscode:)."""
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        refused = await register(http, redirect_uris=[CLIENT_REDIRECT, uri])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    assert "client_id" not in refused.json()


async def test_https_loopback_and_private_use_redirect_uris_are_registered(oauth_server):
    good = ["https://app.example/callback", "http://127.0.0.1:8765/callback", "http://[::1]/callback",
            "http://localhost:3000/callback", "com.example.app:/oauth/callback",
            "cursor://anysphere.cursor-mcp/oauth/callback"]  # fmt: skip
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        registered = await register(http, redirect_uris=good)
        _, challenge = pkce()
        started = await http.get("/authorize", params={
            "client_id": registered.json()["client_id"], "response_type": "code", "state": "s",
            "redirect_uri": "com.example.app:/oauth/callback", "code_challenge": challenge,
            "code_challenge_method": "S256"})  # fmt: skip
        page = await http.get(started.headers["location"])
        denied = await answer_consent(http, oauth_server, page, "deny")
    assert registered.status_code == 201 and registered.json()["redirect_uris"] == good
    assert "com.example.app:" in page.headers["content-security-policy"]  # Deny's redirect may go there
    back = urlsplit(denied.headers["location"])
    assert back.scheme == "com.example.app" and parse_qs(back.query) == {
        "error": ["access_denied"],
        "state": ["s"],
    }


async def test_a_client_registered_before_the_checks_with_a_script_redirect_is_unknown(sandbox, tmp_path):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    legacy = OAuthClientInformationFull(client_id="legacy", redirect_uris=["javascript:alert(1)"],
                                        token_endpoint_auth_method="none")  # fmt: skip
    async with open_store(settings.store, tmp_path) as store:
        assert await store.save_oauth_client("legacy", legacy.model_dump_json(), 0, 10)
    _, challenge = pkce()
    with serve_http(settings, oauth_options(sandbox)) as url:
        answer = httpx2.get(f"{url}/authorize", params={
            "client_id": "legacy", "response_type": "code", "redirect_uri": "javascript:alert(1)",
            "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
    assert answer.status_code == 400 and "location" not in answer.headers


async def test_registration_fields_are_bounded(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        refused = [
            await register(http, client_name="x" * 2000),
            await register(http, redirect_uris=[f"http://127.0.0.1:{9000 + i}/cb" for i in range(11)]),
            await register(http, client_uri="https://app.example/" + "x" * 3000),
            await register(http, contacts=["someone@example.com"] * 11),
        ]
        huge = await register(http, jwks={"keys": ["x" * 20_000]})
        fine = await register(http, client_name="x" * 100)
    assert [(r.status_code, r.json()["error"]) for r in refused] == [(400, "invalid_client_metadata")] * 4
    assert huge.status_code == 413 and fine.status_code == 201


async def test_registrations_are_limited_per_address_and_in_all(sandbox, tmp_path):
    """An address registers a few clients an hour (429 beyond, with Retry-After), and only so many
    registered clients may wait to complete a grant at once (503 beyond); one that completes a
    grant no longer waits."""
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    limits = RegistrationLimits(per_client=3, waiting=4)
    elsewhere = httpx2.AsyncHTTPTransport(local_address="127.0.0.2")  # another client address
    with serve_http(settings, oauth_options(sandbox, registrations=limits)) as url:
        async with (
            httpx2.AsyncClient(base_url=url) as here,
            httpx2.AsyncClient(base_url=url, transport=elsewhere) as there,
        ):
            from_here = [await register(here) for _ in range(4)]
            from_there = [await register(there) for _ in range(2)]
            flow = Flow(url, client_id=from_here[0].json()["client_id"])
            granted = await flow.authorize(here)
            after_the_grant = await register(there)
    assert [r.status_code for r in from_here] == [201, 201, 201, 429]
    assert int(from_here[3].headers["retry-after"]) > 0
    assert [r.status_code for r in from_there] == [201, 503] and "retry-after" in from_there[1].headers
    assert "code=" in granted.headers["location"] and after_the_grant.status_code == 201


async def test_a_client_that_completes_no_grant_expires(sandbox, tmp_path):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    limits = RegistrationLimits(waiting=1, waiting_seconds=2)
    with serve_http(settings, oauth_options(sandbox, registrations=limits)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            granted = Flow(url)
            tokens = await granted.log_in(http)
            idle = await register(http)
            full = await register(http)  # one is waiting already
            await asyncio.sleep(2.2)
            _, challenge = pkce()
            gone = await http.get("/authorize", params={
                "client_id": idle.json()["client_id"], "response_type": "code", "redirect_uri": CLIENT_REDIRECT,
                "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
            room = await register(http)
            refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": granted.client_id,
                                                        "refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert idle.status_code == 201 and full.status_code == 503
    assert gone.status_code == 400 and "location" not in gone.headers  # unknown now
    assert room.status_code == 201 and refreshed.status_code == 200  # a granted client stays


# ------------------------------------------------------------------ token audience, revocation


async def test_a_server_sharing_the_store_takes_none_of_anothers_tokens(sandbox, tmp_path):
    """Two servers with one store (and secret) but different public URLs: each is its own resource
    (RFC 8707), so neither takes the other's access token, refresh token or code, and the one that
    issued them still does."""
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    with (
        serve_http(settings, oauth_options(sandbox)) as first,
        serve_http(settings, oauth_options(sandbox)) as second,
    ):
        async with httpx2.AsyncClient(base_url=first) as here, httpx2.AsyncClient(base_url=second) as there:
            flow = Flow(first)
            tokens = await flow.log_in(here)
            refresh = {"grant_type": "refresh_token", "client_id": flow.client_id,
                       "refresh_token": tokens["refresh_token"]}  # fmt: skip
            code = await flow.code(here)
            elsewhere = [await whoami(there, tokens["access_token"]), await there.post("/token", data=refresh),
                         await flow.token(there, code)]  # fmt: skip
            at_home = [await whoami(here, tokens["access_token"]), await here.post("/token", data=refresh),
                       await flow.token(here, code)]  # fmt: skip
    assert [r.status_code for r in elsewhere] == [401, 400, 400]
    assert elsewhere[1].json()["error"] == elsewhere[2].json()["error"] == "invalid_grant"
    assert [r.status_code for r in at_home] == [200, 200, 200]


async def test_a_public_client_revokes_with_its_client_id_alone(oauth_server):
    """RFC 7009 §2.1: a public client has no secret, and sends its client_id. Another client's id
    revokes nothing; a confidential client must still send its secret."""
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow, stranger, confidential = (
            Flow(oauth_server),
            Flow(oauth_server),
            Flow(oauth_server, confidential=True),
        )
        tokens = await flow.log_in(http)
        await stranger.register(http)
        await confidential.register(http)
        by_stranger = await http.post(
            "/revoke", data={"token": tokens["access_token"], "client_id": stranger.client_id}
        )
        still = await whoami(http, tokens["access_token"])
        revoked = await http.post(
            "/revoke", data={"token": tokens["access_token"], "client_id": flow.client_id}
        )
        after = await whoami(http, tokens["access_token"])
        refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": flow.client_id,
                                                    "refresh_token": tokens["refresh_token"]})  # fmt: skip
        no_secret = await http.post(
            "/revoke", data={"token": "anything", "client_id": confidential.client_id}
        )
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert by_stranger.status_code == 200 and still.status_code == 200
    assert revoked.status_code == 200, revoked.text
    assert after.status_code == 401 and refreshed.status_code == 400  # the grant ended
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]


# ------------------------------------------------------------------ what the store keeps


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.remove()


def query(state_dir: Path, store: str | None, sql: str, *params: Any) -> list[tuple]:
    """A statement on the server's own database, as the server left it (SQLite in the state
    directory, or the PostgreSQL database `store`); `?` marks a parameter."""
    if store is None:
        with contextlib.closing(sqlite3.connect(state_dir / "state.db")) as db, db:
            return db.execute(sql, params).fetchall()
    import psycopg

    with psycopg.connect(store) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def at_rest(state_dir: Path, store: str | None) -> str:
    """Everything the server keeps: every byte of its state directory (SQLite's database and
    journal among them) and, with PostgreSQL, every row of every table."""
    kept = b"".join(path.read_bytes() for path in state_dir.rglob("*") if path.is_file()).decode("latin-1")
    if store is None:
        return kept
    tables = query(state_dir, store, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    rows = [row for (table,) in tables for row in query(state_dir, store, f'SELECT t::text FROM "{table}" t')]
    return kept + "\n".join(str(row) for row in rows)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
async def test_at_rest_the_relatel_token_is_sealed_and_the_flows_secrets_are_digests(
    sandbox, tmp_path, request, backend
):
    store = None
    if backend == "postgres":
        store = request.getfixturevalue("postgres").create_database(f"oauth_{time.monotonic_ns()}")
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path, store=store)
    with serve_http(settings, oauth_options(sandbox)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            flow = Flow(url)
            await flow.register(http)
            code = await flow.code(http)
            tokens = (await flow.token(http, code)).json()
            assert (await whoami(http, tokens["access_token"])).status_code == 200
        kept = at_rest(tmp_path, store)
        (sealed,) = query(tmp_path, store, "SELECT relatel_token FROM oauth_grant")
    (relatel_token,) = sandbox.state.oauth_tokens  # the one token Relatel issued in this flow
    issued = [code, tokens["access_token"], tokens["refresh_token"]]
    assert relatel_token not in kept
    assert provider.Vault(load_secret(tmp_path, None)).open(sealed[0]) == relatel_token  # sealed, by our key
    assert not [secret for secret in issued if secret in kept]
    assert all(provider.hashed(secret) in kept for secret in issued)  # kept as their SHA-256 only


async def test_an_access_token_lives_one_hour_then_is_refused(oauth_server, tmp_path):
    """The hour is passed by moving the token's record back an hour, as the clock would."""
    store = STORES.databases.get(tmp_path)
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        before = time.time()
        tokens = await flow.log_in(http)
        within = await whoami(http, tokens["access_token"])
        digest = provider.hashed(tokens["access_token"])
        ((expires, data),) = query(
            tmp_path, store, "SELECT expires, data FROM oauth_secret WHERE digest = ?", digest
        )
        an_hour_on = {**json.loads(data), "expires": json.loads(data)["expires"] - 3601}
        query(tmp_path, store, "UPDATE oauth_secret SET expires = ?, data = ? WHERE digest = ?",
              expires - 3601, json.dumps(an_hour_on), digest)  # fmt: skip
        after = await whoami(http, tokens["access_token"])
        refresh = {"grant_type": "refresh_token", "client_id": flow.client_id,
                   "refresh_token": tokens["refresh_token"]}  # fmt: skip
        renewed = (await http.post("/token", data=refresh)).json()
        again = await whoami(http, renewed["access_token"])
    assert tokens["expires_in"] == 3600 and renewed["expires_in"] == 3600
    assert before + 3600 <= expires <= time.time() + 3600
    assert within.status_code == 200 and after.status_code == 401
    assert again.status_code == 200  # the client goes on with its refresh token


async def test_a_token_from_before_secrets_were_bound_to_a_resource_is_refused(oauth_server, tmp_path):
    """An access or refresh token stored without the resource it is for (as servers stored them
    before the binding existed) is refused: its client logs in once more."""
    store = STORES.databases.get(tmp_path)
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        tokens = await flow.log_in(http)
        for kind in ("access", "refresh"):
            digest = provider.hashed(tokens[f"{kind}_token"])
            ((data,),) = query(tmp_path, store, "SELECT data FROM oauth_secret WHERE digest = ?", digest)
            unbound = {k: v for k, v in json.loads(data).items() if k != "resource"}
            query(
                tmp_path,
                store,
                "UPDATE oauth_secret SET data = ? WHERE digest = ?",
                json.dumps(unbound),
                digest,
            )
        mcp = await whoami(http, tokens["access_token"])
        refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": flow.client_id,
                                                    "refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert mcp.status_code == 401 and refreshed.status_code == 400


async def test_the_consent_page_names_the_client_and_where_the_browser_goes_back(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        flow = Flow(oauth_server)
        await flow.register(http)
        _, challenge = pkce()
        started = await http.get("/authorize", params={
            "client_id": flow.client_id, "response_type": "code", "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"})  # fmt: skip
        page = (await http.get(started.headers["location"])).text
    assert "Test client" in page and flow.client_id in page and CLIENT_REDIRECT in page
    assert 'value="allow">Allow</button>' in page and 'value="deny">Deny</button>' in page


async def test_the_metadata_names_none_among_the_client_authentication_methods(oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]


# ------------------------------------------------------------------ each user a tenant


async def place_call(http: httpx2.AsyncClient, access_token: str) -> dict[str, Any]:
    """initiate_call as a 2026-07-28 client (the policy allows it without a question): its result."""
    call = {**WHOAMI, "params": {**WHOAMI["params"], "name": "initiate_call",
                                 "arguments": {"to_number": "+45 28 11 44 77"}}}  # fmt: skip
    headers = {**MCP, "Mcp-Name": "initiate_call", "Authorization": f"Bearer {access_token}"}
    return json.loads((await http.post("/mcp", json=call, headers=headers)).text)["result"]


async def test_two_clients_of_one_person_share_the_persons_budget_and_audit(sandbox, tmp_path):
    """Budgets and the audit follow the Relatel account behind the grant, not the client."""
    policy = Policy(costly="allow", budgets=Budgets(calls=1))
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path, policy=policy)
    with serve_http(settings, oauth_options(sandbox)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            first, second = [await Flow(url).log_in(http, "sandbox-admin") for _ in range(2)]
            jonas = await Flow(url).log_in(http, "sandbox-employee")
            results = [await place_call(http, t["access_token"]) for t in (first, second, jonas)]
    assert [bool(r.get("isError")) for r in results] == [False, True, False]
    assert "budget of 1 calls" in results[1]["structuredContent"]["error"]["message"]  # Mette's, via client 2
    async with open_store(settings.store, tmp_path) as store:
        accounts = [r["account"] for r in await store.recent(10)]
    assert len(accounts) == 3 and len(set(accounts)) == 2  # Mette's two calls under one account


async def test_an_oauth_session_is_bound_to_the_client_and_person_that_opened_it(sandbox, oauth_server):
    async with httpx2.AsyncClient(base_url=oauth_server) as http:
        mette = await Flow(oauth_server).log_in(http)
        jonas = await Flow(oauth_server).log_in(http, "sandbox-employee")

        async def post(body: dict[str, Any], tokens: dict[str, Any], **headers: str) -> httpx2.Response:
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            return await http.post("/mcp", json=body, headers={**MCP_HEADERS, **bearer, **headers})

        opened = await post(INITIALIZE, mette)
        session = opened.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        stolen = await post(ping, jonas, **{"Mcp-Session-Id": session})
        own = await post(ping, mette, **{"Mcp-Session-Id": session})
    assert opened.status_code == 200 and stolen.status_code == 404 and own.status_code == 200
