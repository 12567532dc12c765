"""The MCP server: MCP's requests translated to the assembled application (app.py) and back:
tools/list from its tools, tools/call into its pipeline, resources from its resources, prompts
from core/prompts.py (offered where their tools are), completion from its directory.

It uses the SDK's low-level `Server`, because every tool here is data (a catalogue entry with a
pydantic model), not a Python function with a signature for MCPServer to introspect.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from .. import __version__, logs
from ..app import App, offered, own_tenant, requirements
from ..core import catalog, prompts, traces
from ..core.errors import ToolError
from ..core.prompts import COMPLETES, ArgumentError, Prompt
from ..core.sanitize import quoted
from ..pipeline import error_result
from ..policy import Channel
from ..policy.gate import PageHost
from ..resources import AUDIT, AUDIT_URI, TEMPLATES, Contents, Template, resolve, unknown
from ..store import StoreUnavailable
from ..upstream.access import NOTHING, Lacking, hidden_error
from ..upstream.client import Tenant
from ..upstream.directory import NONE, Matches

INSTRUCTIONS = (
    "One company's Relatel phone system. Toolsets: contacts, employees, groups, receptions (main "
    "numbers, statistics), calls, voicemails, conversations (chats, smileys, SMS, tags), m2m (orders, "
    "machine SIMs). Phone numbers as people write them (+45 28 11 44 77). Lists come newest first; "
    'pass next_page back for more. List and get tools answer concisely; detail "full" gives every '
    "field. Calls, SMS, orders and deletes ask the user to confirm through the client; clients that "
    "cannot ask do not get them, unless an operator lets the agent confirm (--costly preview / "
    "--destructive preview)."
)
log = logging.getLogger("relatel_mcp.front")
OPT_IN = "--costly preview --destructive preview, or a client that supports MCP elicitation"
LIST_WAIT_SECONDS = 5.0  # how long tools/list waits to learn what an account can use
COMPLETE_WAIT_SECONDS = 5.0  # how long a completion waits for Relatel's lists before answering none

TenantOf = Callable[[ServerRequestContext], Awaitable[Tenant]]
PagesOf = Callable[[ServerRequestContext], PageHost | None]


def build_server(app: App, tenant_of: TenantOf | None = None, pages_of: PagesOf | None = None) -> Server:
    """`tenant_of` says whose account a request acts on (by default the configured token's);
    `pages_of` where its approval pages are served (by default on loopback, for stdio)."""
    handlers = Handlers(app, tenant_of, pages_of)
    server = Server(
        "relatel-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        # For the SDK's Mcp-Param header check of 2026-07-28 HTTP calls: the schema at hand, rather
        # than running tools/list (and asking what the account can use) before every call.
        get_tool_input_schema={op.name: tool.input_schema for op, tool in app.tools}.get,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_resource_templates,
        on_read_resource=handlers.read_resource,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        on_completion=handlers.complete,
    )
    server.middleware.append(SharedLists())
    return server


class SharedLists:
    """One copy of each distinct list answer (tools/list above all), however many sessions hold it.

    The SDK's HTTP transports keep each open session's last message until its next one (a loop
    variable: of streamable HTTP's message router, of SSE's writer), and an idle session's last is
    most often its tools/list: 150 KB or more as Python objects (41 tools: 25 KB of JSON). The
    answer is the same for every client of a kind, so one equal to an answer kept here is answered
    with that one, and open sessions share it. The SDK copies only the top of what a middleware
    returns, and changes none of it (runner.py, `_dump_result`).
    """

    METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.kept: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()

    async def __call__(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        answer = await call_next(ctx)
        if ctx.method not in self.METHODS or not isinstance(answer, dict):
            return answer
        items = next((v for v in answer.values() if isinstance(v, list)), [])
        key = (ctx.method, ctx.protocol_version, *(i.get("name") for i in items if isinstance(i, dict)))
        if self.kept.get(key) == answer:
            self.kept.move_to_end(key)
            return self.kept[key]
        self.kept[key] = answer
        self.kept.move_to_end(key)
        while len(self.kept) > self.size:
            self.kept.popitem(last=False)
        return answer


class Handlers:
    """MCP's requests, each answered from the app: one method per request the server serves."""

    def __init__(self, app: App, tenant_of: TenantOf | None, pages_of: PagesOf | None) -> None:
        self.app = app
        self.tenant_of = tenant_of or the_tenant(own_tenant(app.settings))
        self.pages_of: PagesOf = pages_of or (lambda ctx: app.loopback)
        self.operations = {op.name: op for op, _ in app.tools}
        self.needs = requirements(self.operations.values())
        self.prompts = {prompt.name: prompt for prompt in prompts.load()}
        self.server_session = secrets.token_urlsafe(16)  # stdio: one client, one session
        self.told: OrderedDict[str, None] = OrderedDict()  # sessions told of hidden tools, while open

    async def list_tools(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        # Only what this client could ever get through: a gated tool that needs a human's yes is
        # left out for a client that cannot ask its user, and a tool that needs what the account
        # lacks (admin, a plan, the M2M agreement) is left out. A call to one anyway says why.
        human = any(_reach(ctx, self.pages_of(ctx)))
        listed = offered(self.app.tools, self.app.gate.policy, human=human, lacking=await self._lacking(ctx))
        if not human:
            self._tell_hidden(ctx, len(listed))
        return types.ListToolsResult(tools=[tool for _, tool in listed])

    def _tell_hidden(self, ctx: ServerRequestContext, listed: int) -> None:
        """One log line per session of a client that cannot ask its user: how many tools its list
        leaves out for that, and the opt-in. Otherwise it is told nothing (a client such as the
        MCP Inspector then answers a call to one with its own "not found")."""
        policy = self.app.gate.policy
        hidden = sum(policy.offers(op.kind, human=True) and not policy.offers(op.kind, human=False)
                     for op, _ in self.app.tools)  # fmt: skip
        session = session_of(ctx, self.server_session)
        if not hidden or session in self.told:
            return
        self.told[session] = None
        if session and ctx.request is not None and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            # A streamable-HTTP or SSE session: forgotten when it ends (a sessionless request's "",
            # and stdio's one session, are kept).
            from ..internals import connection_of  # HTTP only: stdio never loads uvicorn

            connection_of(ctx.session).exit_stack.callback(self.told.pop, session, None)
        while len(self.told) > 1000:
            self.told.popitem(last=False)
        message = (
            f"{hidden} costly and destructive tools are left out of this client's list ({listed} "
            "listed): it declares no MCP elicitation, so it cannot ask its user to confirm them. "
            f"To offer them: {OPT_IN}."
        )
        logs.event(log, "tools_hidden", level=logging.WARNING, hidden=hidden, listed=listed,
                   reason="no elicitation capability", message=message)  # fmt: skip

    async def call_tool(
        self, ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        op = self.operations.get(params.name)
        if op is None:
            raise MCPError(code=types.INVALID_PARAMS, message=self._unknown(params.name))
        channel = channel_of(ctx, params, self.pages_of(ctx), session_of(ctx, self.server_session))
        traces.note({"network.transport": "pipe" if ctx.request is None else "tcp"})  # the SDK's span
        try:
            tenant = await self.tenant_of(ctx)
        except ToolError as error:  # e.g. an OAuth grant that ended since the request was let in
            return error_result(error, secrets=self.app.secrets)
        known = None if self.app.settings.all_tools else self.app.access.known(tenant)
        if known is not None and (missing := known.of(op)):  # hidden from this account's list
            return error_result(hidden_error(op, missing), secrets=self.app.secrets)
        return await self.app.pipeline.call(op, params.arguments, tenant, channel)

    def _unknown(self, name: str) -> str:
        """A tool this server does not serve: a catalogue tool outside the chosen toolsets says so."""
        other = next((op for op in catalog.load() if op.name == name), None)
        if other is None:
            return catalog.unknown_tool(name, self.operations)
        return (
            f"{name} is in the {other.toolset} toolset, which this server does not offer: add it to "
            "--toolsets (or RELATEL_MCP_TOOLSETS)."
        )

    async def list_resources(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[AUDIT])

    async def list_resource_templates(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [t.described() for t in await self.templates(ctx)]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def templates(self, ctx: ServerRequestContext) -> list[Template]:
        """The templates offered here: those whose read tool this client is offered."""
        lacking = await self._lacking(ctx)
        return [t for t in TEMPLATES if (op := self.operations.get(t.tool)) and not lacking.of(op)]

    async def read_resource(
        self, ctx: ServerRequestContext, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            return types.ReadResourceResult(contents=await self._read(ctx, uri))
        except ToolError as exc:
            code = RESOURCE_NOT_FOUND if exc.code == "not_found" else types.INTERNAL_ERROR
            message = exc.message if exc.hint is None else f"{exc.message} {exc.hint}"
            raise MCPError(code=code, message=message) from None
        except StoreUnavailable as exc:
            raise MCPError(
                code=types.INTERNAL_ERROR, message=f"{uri[:100]} cannot be read now: {exc}"
            ) from None

    async def _read(self, ctx: ServerRequestContext, uri: str) -> Contents:
        """A resource as this request's account may read it: through its tool's read, where that
        tool is served and the account can use it."""
        resources = self.app.resources
        if uri == AUDIT_URI:
            return await resources.audit(await self.tenant_of(ctx))
        found = resolve(uri, self.operations)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=unknown(uri, self.operations))
        template, op, id = found
        tenant = await self.tenant_of(ctx)
        known = None if self.app.settings.all_tools else self.app.access.known(tenant)
        if known is not None and (missing := known.of(op)):
            raise hidden_error(op, missing)
        return await resources.read(template, op, id, tenant)

    async def list_prompts(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        # A prompt is offered where every tool it names is: the same rule as tools/list.
        offer = await self._offer(ctx)
        listed = [p.described() for p in self.prompts.values() if offer.covers(p)]
        return types.ListPromptsResult(prompts=listed)

    async def get_prompt(
        self, ctx: ServerRequestContext, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown prompt {quoted(params.name, 80)}; prompts/list shows the prompts offered.",
            )
        offer = await self._offer(ctx)
        if not offer.covers(prompt):
            raise MCPError(code=types.INVALID_PARAMS, message=self._not_offered(prompt, offer))
        try:
            return prompt.render(params.arguments)  # sends nothing upstream
        except ArgumentError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None

    def _not_offered(self, prompt: Prompt, offer: Offer) -> str:
        """Why a client is not offered a prompt: each of its tools it is not offered, and why."""
        why = []
        for name in (t for t in prompt.tools if t not in offer.tools):
            op = self.operations.get(name)
            if op is None:
                why.append(f"{name} is outside the toolsets this server offers (--toolsets)")
            elif missing := offer.lacking.of(op):
                needs = " and ".join(catalog.REQUIREMENTS[r] for r in missing)
                why.append(f"{name} needs {needs}, which this account lacks")
            elif not self.app.gate.policy.offers(op.kind, human=True):
                why.append(f"{name} is a {op.kind} tool, which the server's policy does not offer")
            else:
                why.append(f"{name} needs the user's yes, and this client cannot ask its user ({OPT_IN})")
        return f"The prompt {prompt.name} is not offered to this client: {'; '.join(why)}."

    async def complete(
        self, ctx: ServerRequestContext, params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        """Values for a prompt's argument (names) or a resource template's {id} (ids), from the
        requesting account's own lists; none where they cannot be read (never an error)."""
        matches = NONE
        with anyio.move_on_after(COMPLETE_WAIT_SECONDS):
            matches = await self._complete(ctx, params)
        return types.CompleteResult(
            completion=types.Completion(values=matches.values, total=matches.total, has_more=matches.has_more)
        )

    async def _complete(self, ctx: ServerRequestContext, params: types.CompleteRequestParams) -> Matches:
        ref, argument = params.ref, params.argument
        if isinstance(ref, types.PromptReference):
            prompt = self.prompts.get(ref.name)
            spec = prompt.argument(argument.name) if prompt is not None else None
            if prompt is None or spec is None or spec.completes is None:
                return NONE
            if not (await self._offer(ctx)).covers(prompt):
                return NONE
            kind, ids = spec.completes, False
        else:
            template = next((t for t in await self.templates(ctx) if t.uri_template == ref.uri), None)
            listed = template is not None and COMPLETES[template.completes] in self.operations
            if template is None or not listed or argument.name != "id":
                return NONE
            kind, ids = template.completes, True
        try:
            tenant = await self.tenant_of(ctx)
        except ToolError:  # e.g. an OAuth grant that ended: nothing to complete from
            return NONE
        directory = self.app.directory
        return await (directory.ids if ids else directory.names)(tenant, kind, argument.value)

    async def _offer(self, ctx: ServerRequestContext) -> Offer:
        """The tools this client is offered, as tools/list decides."""
        human = any(_reach(ctx, self.pages_of(ctx)))
        lacking = await self._lacking(ctx)
        listed = offered(self.app.tools, self.app.gate.policy, human=human, lacking=lacking)
        return Offer(frozenset(op.name for op, _ in listed), lacking)

    async def _lacking(self, ctx: ServerRequestContext) -> Lacking:
        """What this request's account lacks (each tenant its own), unless every tool is listed."""
        if self.app.settings.all_tools or not self.needs:
            return NOTHING
        try:
            tenant = await self.tenant_of(ctx)
        except ToolError:  # a call will say why nothing works
            return NOTHING
        with anyio.move_on_after(LIST_WAIT_SECONDS):
            return await self.app.access.of(tenant, self.needs)
        return NOTHING  # Relatel is slow to say: list everything rather than keep the client waiting


RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for a resource that does not exist


@dataclass(frozen=True)
class Offer:
    """The tools one client is offered (tools/list), and what its account lacks."""

    tools: frozenset[str]
    lacking: Lacking

    def covers(self, prompt: Prompt) -> bool:
        return set(prompt.tools) <= self.tools


def the_tenant(tenant: Tenant) -> TenantOf:
    """Every request acts on the same account (stdio, and HTTP with API keys)."""

    async def same(ctx: ServerRequestContext) -> Tenant:
        return tenant

    return same


def _reach(ctx: ServerRequestContext, pages: PageHost | None) -> tuple[bool, bool]:
    """Can this request reach a human now, with a form and with a URL? Both eras.

    Declared capabilities count only where the server can actually send the question: in the
    2025-11-25 era that needs a back-channel (not stateless HTTP); a URL also needs a page host.
    """
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None:
        return False, False
    live = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS or ctx.session.can_send_request
    form = elicitation.form is not None or elicitation.url is None  # a bare {} means form
    return live and form, live and elicitation.url is not None and pages is not None


def session_of(ctx: ServerRequestContext, server_session: str) -> str:
    """A name for the MCP session this request belongs to, where one lasts: over stdio the server
    serves one client (`server_session`); over HTTP the Mcp-Session-Id of streamable HTTP or the
    SSE session (each checked by the SDK to exist and be this credential's). A sessionless HTTP
    request (2026-07-28, or --stateless) has none: a preview token is then bound to its
    credential alone."""
    request = ctx.request
    if request is None:
        return server_session
    return request.headers.get("mcp-session-id") or request.query_params.get("session_id") or ""


def channel_of(
    ctx: ServerRequestContext, params: types.CallToolRequestParams, pages: PageHost | None, session: str
) -> Channel:
    """How this request can reach a human, and the session it came in (see `session_of`)."""
    form, url = _reach(ctx, pages)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return Channel(
            modern=True,
            form=form,
            url=url,
            pages=pages,
            input_responses=params.input_responses,
            request_state=params.request_state,
            session=session,
        )
    peer = ctx.session

    async def elicit(message: str, schema: dict) -> types.ElicitResult:
        return await peer.elicit_form(message, schema, related_request_id=ctx.request_id)

    async def elicit_url(message: str, url: str, elicitation_id: str) -> types.ElicitResult:
        return await peer.elicit_url(message, url, elicitation_id, related_request_id=ctx.request_id)

    async def completed(elicitation_id: str) -> None:
        with contextlib.suppress(Exception):  # a courtesy to the client; the answer is already in
            await peer.send_elicit_complete(elicitation_id, related_request_id=ctx.request_id)

    return Channel(
        form=form,
        url=url,
        elicit=elicit,
        elicit_url=elicit_url,
        completed=completed,
        pages=pages,
        session=session,
    )
