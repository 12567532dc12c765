"""OAuth 2.0, end to end: the sandbox speaking Relatel's flow, `relatel-mcp login` on this
machine, and `serve --auth oauth` as its MCP clients' authorization server, with every refusal
the flow must make. The browser here is an HTTP client that reads each page and submits its form
as a user would; tests/test_browser.py does it once more in Chromium, with the SDK's OAuth client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import stat
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from relatel_mcp.oauth.relatel import RelatelApp
from relatel_mcp.sandbox.oauth import CLIENT_ID, CLIENT_SECRET
from relatel_mcp.transports import HttpOptions

from .services import free_port
from .support import EXE, env, error_of, serve_http, settings_for

pytestmark = pytest.mark.anyio

CLIENT_REDIRECT = "http://127.0.0.1:9/callback"  # where our MCP client is sent back (never fetched)


def fields_of(page: str) -> dict[str, str]:
    """A form's hidden and preset fields, as a browser would submit them."""
    values = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    checked = re.search(r'name="employee" value="([^"]+)" checked', page)
    return {**values, **({"employee": checked.group(1)} if checked else {})}


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


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
    whoami = subprocess.run([EXE, "whoami", "--base-url", sandbox.url, "--state-dir", str(tmp_path)],
                            env=env(), capture_output=True, text=True, timeout=30)  # fmt: skip
    assert whoami.returncode == 0 and "Mette Hansen" in whoami.stdout
    params = StdioServerParameters(command=EXE, args=[], env=env(RELATEL_BASE_URL=sandbox.url,
                                                                 RELATEL_MCP_STATE_DIR=str(tmp_path)))  # fmt: skip
    async with Client(params, mode="legacy") as session:
        me = await session.call_tool("get_current_employee", {})
        sandbox.control.delete("/_sandbox/oauth/tokens")  # the user destroys their tokens at Relatel
        gone = await session.call_tool("get_current_employee", {})
    assert me.structured_content["employee"]["name"] == "Mette Hansen"
    assert error_of(gone)["code"] == "unauthorized" and "relatel-mcp login" in error_of(gone)["hint"]
    refused = subprocess.run([EXE, "whoami", "--base-url", sandbox.url, "--state-dir", str(tmp_path)],
                             env=env(), capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 2 and "run relatel-mcp login again" in refused.stderr
    logout = subprocess.run([EXE, "logout", "--state-dir", str(tmp_path)], env=env(), capture_output=True,
                            text=True, timeout=30)  # fmt: skip
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


@pytest.fixture
def oauth_server(sandbox, tmp_path):
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    options = HttpOptions(auth="oauth", oauth_app=RelatelApp(sandbox.url, CLIENT_ID, CLIENT_SECRET))
    with serve_http(settings, options) as url:
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
        to_relatel = await http.post("/oauth/consent", data={**fields_of(consent.text), "decision": "allow"})
        back = await relatel_code(to_relatel.headers["location"], employee=employee)
        return await http.get("/oauth/callback", params={k: v[0] for k, v in back.items()})

    async def token(self, http: httpx2.AsyncClient, code: str, verifier: str | None = "") -> httpx2.Response:
        """The code exchange, with the flow's PKCE verifier (or `verifier`; None sends none)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT,
                **self.credentials(), "code_verifier": verifier or self.verifier}  # fmt: skip
        if verifier is None:
            del form["code_verifier"]
        return await http.post("/token", data=form)

    async def log_in(self, http: httpx2.AsyncClient, employee: str = "sandbox-admin") -> dict[str, Any]:
        await self.register(http)
        back = await self.authorize(http, employee=employee)
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        return (await self.token(http, code)).json()


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
    nor used."""
    port = free_port()
    process = subprocess.Popen(
        [EXE, "serve", "--transport", "http", "--auth", "oauth", "--port", str(port), "--state-dir", str(tmp_path)],
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
    finally:
        process.terminate()
        process.wait(10)


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
        back = await flow.authorize(http)
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
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
    return await attacker.get(started.headers["location"])


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
        to_relatel = await attacker.post(
            "/oauth/consent", data={**fields_of(consent.text), "decision": "allow"}
        )
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
        back = await flow.authorize(http)
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
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
    assert next_request.status_code == 401 and "resource_metadata" in next_request.headers["www-authenticate"]
