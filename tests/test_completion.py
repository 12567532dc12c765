"""completion/complete through a real MCP client, in both protocol eras: prompt arguments complete
to names, resource templates' {id} to ids, from the requesting account's own lists in the
sandbox (read over HTTP), by prefix at the start of any word; an account never sees another's
names; a repeat is answered from a short-lived cache and concurrent ones share one read; at most
100 values; nothing (never an error) where Relatel cannot be read or the prompt is not offered."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client

from relatel_mcp.app import App, assemble
from relatel_mcp.front.server import build_server
from relatel_mcp.front.transports import HttpOptions
from relatel_mcp.upstream.client import Tenant

from .support import MODES, answering, connect, http_transport, serve_http, settings_for

pytestmark = pytest.mark.anyio

HUMAN = {"elicitation_callback": answering("decline")}  # a client offered every prompt
CONTACTS = "/api/v2/contacts"


def prompt(name: str) -> types.PromptReference:
    return types.PromptReference(name=name)


def template(uri: str) -> types.ResourceTemplateReference:
    return types.ResourceTemplateReference(uri=uri)


CONTACT = (prompt("caller_history"), "contact")
EMPLOYEE = (prompt("return_missed_calls"), "employee")
GROUP = (prompt("office_closed_sms"), "group")
RECEPTION = (prompt("reception_week_report"), "reception")
CONTACT_ID = (template("relatel://contacts/{id}"), "id")
EMPLOYEE_ID = (template("relatel://employees/{id}"), "id")
VOICEMAIL_ID = (template("relatel://voicemails/{id}/recording"), "id")


async def complete(session: Client, target: tuple[Any, str], value: str) -> types.Completion:
    ref, name = target
    return (await session.complete(ref, {"name": name, "value": value})).completion


def reads(sandbox, path: str = CONTACTS) -> list[dict[str, Any]]:
    """The sandbox's reads of `path` (the list a completion reads)."""
    return [r for r in sandbox.requests() if r["path"] == path and r["method"] == "GET"]


def listed(sandbox, path: str, key: str, token: str = "sandbox-admin") -> list[dict[str, Any]]:
    """What the sandbox lists for `token` (the same account as the tests' server token)."""
    return sandbox.api(token).get(path, params={"limit": 100}).raise_for_status().json()[key]


def by_name(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["name"].casefold(), r["id"]))


@asynccontextmanager
async def served(base_url: str, mode: str, **options: Any) -> AsyncIterator[tuple[App, Client]]:
    """A client of a server in this process, and the server's app (to set the directory's clock)."""
    async with (
        assemble(settings_for(base_url, **options)) as app,
        Client(build_server(app), mode=mode, **HUMAN) as session,
    ):
        yield app, session


def add_contacts(sandbox, count: int) -> None:
    """`count` more contacts in the first company, straight into the sandbox's state."""
    contacts = sandbox.state.companies[1].contacts
    for i in range(count):
        contacts[1000 + i] = {"id": 1000 + i, "name": f"Bulk {i:03}", "number": f"4599{i:06}", "email": None}


# ------------------------------------------------------------------ what completes, and how


@pytest.mark.parametrize("mode", MODES)
async def test_prompt_arguments_complete_to_names_from_the_accounts_own_lists(sandbox, mode):
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        assert session.server_capabilities.completions is not None
        employees = await complete(session, EMPLOYEE, "")
        groups = await complete(session, GROUP, "s")
        receptions = await complete(session, RECEPTION, "HO")
        contacts = await complete(session, CONTACT, "")
        anne = await complete(session, CONTACT, "an")
        day = await complete(session, (prompt("return_missed_calls"), "day"), "2026")
    names = [e["name"] for e in by_name(listed(sandbox, "/api/v2/employees", "employees"))]
    assert employees.values == names and employees.total == 5 and employees.has_more is False
    assert groups.values == ["Salg", "Support"] and groups.total == 2
    assert receptions.values == ["Hovednummer"]
    assert contacts.values == [c["name"] for c in by_name(listed(sandbox, CONTACTS, "contacts"))]
    assert len(contacts.values) == 12 and anne.values == ["Anne Kristensen"]
    assert day.values == [] and day.total == 0  # a date completes from no list


@pytest.mark.parametrize("mode", MODES)
async def test_a_name_matches_at_its_start_or_the_start_of_any_word(sandbox, mode):
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        found = {typed: (await complete(session, CONTACT, typed)).values
                 for typed in ("mik", "LONE MIK", "vvs", "ikk", "øSTER", "toft", "zz")}  # fmt: skip
    assert found["mik"] == found["LONE MIK"] == ["Lone Mikkelsen"]
    assert found["vvs"] == ["Peter Vestergaard (Vestkyst VVS)"]  # a word inside brackets
    assert found["ikk"] == [] and found["zz"] == []  # inside a word is no match
    assert found["øSTER"] == ["Karin Østergaard"]
    assert found["toft"] == ["Mads Toft (Toft Transport)"]  # once, though two words match


@pytest.mark.parametrize("mode", MODES)
async def test_template_ids_complete_by_id_or_by_name_ordered_by_name(sandbox, mode):
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        ones = await complete(session, CONTACT_ID, "1")
        mik = await complete(session, CONTACT_ID, "mik")
        sofie = await complete(session, EMPLOYEE_ID, "so")
        lone = await complete(session, VOICEMAIL_ID, "lone")
        other = await complete(session, (template("relatel://contacts/{id}"), "name"), "1")
        unknown = await complete(session, (template("relatel://calls/{id}"), "id"), "1")
    contacts = by_name(listed(sandbox, CONTACTS, "contacts"))
    assert (
        ones.values
        == [str(c["id"]) for c in contacts if str(c["id"]).startswith("1")]
        == ["11", "1", "12", "10"]
    )
    assert mik.values == ["4"] and sofie.values == ["3"]
    assert lone.values == ["4"]  # the voicemail Lone Mikkelsen left
    assert other.values == unknown.values == []


# ------------------------------------------------------------------ whose names


@pytest.mark.parametrize("mode", MODES)
async def test_one_account_never_completes_anothers_names_over_streamable_http(sandbox, tmp_path, mode):
    """One server, two tenants (passthrough: each client's own Relatel token): each completes from
    its own company, also while the other's list is in the cache. Over a real socket."""
    tokens = ("sandbox-admin", "sandbox-starter")
    own = {t: [str(c["id"]) for c in by_name(listed(sandbox, CONTACTS, "contacts", t))] for t in tokens}
    sandbox.clear_requests()
    settings = settings_for(sandbox.url, token=None, state_dir=tmp_path)
    seen: dict[str, list[str]] = {}
    with serve_http(settings, HttpOptions(auth="passthrough")) as url:
        for token in (*tokens, "sandbox-admin"):
            async with Client(http_transport(url, token), mode=mode) as session:
                prompts = [p.name for p in (await session.list_prompts()).prompts]
                names = (await complete(session, CONTACT, "")).values
                ids = (await complete(session, CONTACT_ID, "")).values
            assert "caller_history" in prompts
            assert seen.setdefault(token, names) == names and ids == own[token]
    assert seen["sandbox-starter"] == ["Café Kringle", "Mølleren A/S"]
    assert len(seen["sandbox-admin"]) == 12 and not set(seen["sandbox-admin"]) & set(seen["sandbox-starter"])
    # Each tenant's list read once (the second time from the cache), with its own token.
    fingerprints = sorted(hashlib.sha256(t.encode()).hexdigest()[:16] for t in tokens)
    assert sorted(r["token_fp"] for r in reads(sandbox)) == fingerprints


# ------------------------------------------------------------------ the cache


@pytest.mark.parametrize("mode", MODES)
async def test_a_repeat_is_answered_from_the_cache_until_it_expires(sandbox, mode):
    now = [1000.0]
    async with served(sandbox.url, mode) as (app, session):
        app.directory.clock = lambda: now[0]
        assert (await complete(session, CONTACT, "mik")).values == ["Lone Mikkelsen"]
        sandbox.api().post(CONTACTS, json={"contact": {"name": "Mikala Berg"}}).raise_for_status()
        now[0] += app.directory.ttl - 1
        cached = await complete(session, CONTACT, "mik")
        assert len(reads(sandbox)) == 1 and reads(sandbox)[0]["query"] == {"limit": ["100"]}
        now[0] += 2  # past the TTL
        fresh = await complete(session, CONTACT, "mik")
    assert cached.values == ["Lone Mikkelsen"]
    assert fresh.values == ["Lone Mikkelsen", "Mikala Berg"] and len(reads(sandbox)) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_completions_of_one_list_at_once_share_one_read(sandbox, mode):
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        await session.list_prompts()  # the account's own reads first
        sandbox.fault(path=CONTACTS, latency=0.5)  # the first read is slow: the rest arrive meanwhile
        answers: list[list[str]] = []

        async def one(typed: str) -> None:
            answers.append((await complete(session, CONTACT, typed)).values)

        async with anyio.create_task_group() as group:
            for typed in ("l", "lo", "lon", "lone", "lone m"):
                group.start_soon(one, typed)
    assert len(reads(sandbox)) == 1
    assert sorted(answers) == sorted([["Lone Mikkelsen"]] * 5)


@pytest.mark.parametrize("mode", MODES)
async def test_the_cache_keeps_a_bounded_number_of_accounts(sandbox, mode):
    async with served(sandbox.url, mode) as (app, session):
        app.directory.accounts = 1
        own = await complete(session, CONTACT, "")
        await app.directory.names(Tenant("sandbox-starter"), "contact", "")  # a second account
        assert len(app.directory._kept) == 1  # the least recently used account is dropped
        again = await complete(session, CONTACT, "")
    assert own.values == again.values and len(reads(sandbox)) == 3  # the first account read anew


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("mode", MODES)
async def test_at_most_100_values_with_the_total_where_the_whole_list_was_read(sandbox, mode):
    add_contacts(sandbox, 150)
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        every = await complete(session, CONTACT, "")
        bulk = await complete(session, CONTACT, "bulk 1")
    assert len(every.values) == 100 and every.total == 162 and every.has_more is True
    assert (
        bulk.values == [f"Bulk {i}" for i in range(100, 150)] and bulk.total == 50 and bulk.has_more is False
    )
    assert [r["query"].get("id_gt_or_eq") for r in reads(sandbox)] == [None, ["1088"]]  # two pages


@pytest.mark.parametrize("mode", MODES)
async def test_a_long_list_is_read_a_bounded_number_of_pages(sandbox, mode):
    add_contacts(sandbox, 1000)
    async with connect(sandbox.url, mode=mode, **HUMAN) as session:
        every = await complete(session, CONTACT, "")
        one = await complete(session, CONTACT, "lone")
    assert len(reads(sandbox)) == 5 and all(r["query"]["limit"] == ["100"] for r in reads(sandbox))
    assert len(every.values) == 100 and every.total is None and every.has_more is True  # more unread
    assert one.values == ["Lone Mikkelsen"] and one.has_more is True


# ------------------------------------------------------------------ nothing to complete


@pytest.mark.parametrize("mode", MODES)
async def test_nothing_completes_where_relatel_cannot_be_read(sandbox, mode):
    async with connect("http://127.0.0.1:9", mode=mode, retries=0, **HUMAN) as session:
        unreachable = await complete(session, CONTACT, "l")
    sandbox.fault(path=CONTACTS, status=503, count=10)
    async with connect(sandbox.url, mode=mode, retries=0, **HUMAN) as session:
        refused = await complete(session, CONTACT, "l")
        ids = await complete(session, CONTACT_ID, "1")
    async with connect(sandbox.url, mode=mode, token="sandbox-tenant-no", **HUMAN) as session:
        other = await complete(session, EMPLOYEE, "")  # a working token: still answers
    async with connect(sandbox.url, mode=mode, token="not-a-relatel-token", **HUMAN) as session:
        unauthorized = await complete(session, EMPLOYEE, "")
    for nothing in (unreachable, refused, ids, unauthorized):
        assert nothing.values == [] and nothing.has_more is False
    assert len(other.values) == 5


@pytest.mark.parametrize("mode", MODES)
async def test_a_prompt_or_template_not_offered_completes_nothing_and_reads_nothing(sandbox, mode):
    async with connect(sandbox.url, mode=mode) as session:  # cannot ask its user: no SMS prompt
        sms = await complete(session, GROUP, "s")
        history = await complete(session, CONTACT, "mik")
    async with connect(sandbox.url, mode=mode, toolsets=frozenset({"calls"}), **HUMAN) as session:
        contact = await complete(session, CONTACT_ID, "1")
        caller = await complete(session, CONTACT, "mik")
    assert sms.values == [] and history.values == ["Lone Mikkelsen"]
    assert contact.values == caller.values == []
    assert reads(sandbox, "/api/v2/employee_groups") == [] and len(reads(sandbox)) == 1  # history's
