"""`Toolkit`: the server's tools for chat assistants that call functions without MCP.

The same tools, validation, gate, audit and error contract as the MCP server, because every call
runs through the one `Pipeline` with the server's settings. Only the way to a human differs.

The app's `approve` is its human rung. A call that needs a human's yes is answered in two rounds,
exactly as a 2026-07-28 MCP client answers a form question: round one resolves the facts, refuses
what no yes could allow (destinations, budget, kill switch) and returns the gate's question with a
request state sealed to this call (tool, arguments, account, facts, expiry, single use);
`approve` shows the question to the human; round two, after the yes, resolves the facts again and
sends only if they are what the human saw. Without `approve`, such a tool is not listed and a call
to it is refused, as for an MCP client that cannot ask its user.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import mcp.types as types

from ..app import App, assemble, described_tools, offered, own_tenant
from ..core import catalog
from ..core.catalog import Operation
from ..core.errors import ToolError
from ..pipeline import TOKEN_ARGUMENT, error_result, validate
from ..policy import Channel
from ..policy.gate import CONFIRM_KEY
from ..resources import resolve, unknown
from ..settings import Settings, load_settings
from . import definitions
from .confirmation import Arguments, Confirmation, Pending

if TYPE_CHECKING:
    from agents import FunctionTool
    from langchain_core.tools import StructuredTool

log = logging.getLogger(__name__)
MAX_WAITING = 1000  # questions kept for a later answer (agent runs interrupted for approval)


Approve = Callable[[Confirmation], bool | Awaitable[bool]]


class Toolkit:
    """The tools as function definitions for OpenAI, Anthropic and agent frameworks, and `call`.

    `async with toolkit:` keeps one connection pool and state store open for many calls; without
    it each call opens and closes its own."""

    def __init__(self, settings: Settings, *, approve: Approve | None = None) -> None:
        self.settings = settings
        self.approve = approve
        self._tenant = own_tenant(settings)
        self._tools = described_tools(settings)
        self._operations = {op.name: op for op, _ in self._tools}
        self._secrets = tuple(s for s in (settings.token, settings.secret) if s)
        self._open: tuple[asyncio.AbstractEventLoop, App] | None = None
        self._stack = contextlib.AsyncExitStack()
        self._waiting: OrderedDict[str, Pending | dict[str, Any]] = OrderedDict()
        # A preview token this Toolkit gives works only here. A question: its sealed state comes
        # back, and the answer goes with it in round two.
        session = secrets.token_urlsafe(16)
        self._no_human = Channel(session=session)
        self._ask_channel = Channel(modern=True, form=True, session=session)

    @classmethod
    def from_env(
        cls, approve: Approve | None = None, toolsets: Iterable[str] | None = None, read_only: bool = False
    ) -> Toolkit:
        """The server's settings, token and policy (RELATEL_TOKEN, RELATEL_MCP_CONFIG, ...)."""
        settings = load_settings(sandbox=False, toolsets=toolsets, read_only=read_only or None)
        return cls(settings, approve=approve)

    # ------------------------------------------------------------------ definitions

    def tools(self, *, human: bool | None = None) -> list[tuple[Operation, types.Tool]]:
        """The tools offered: those that need a human's yes only with a way to ask one (by
        default, whether `approve` was given)."""
        human = self.approve is not None if human is None else human
        return offered(self._tools, self.settings.policy, human=human)

    def openai_tools(self) -> list[dict[str, Any]]:
        return definitions.export(self.tools(), "openai")

    def openai_responses_tools(self) -> list[dict[str, Any]]:
        return definitions.export(self.tools(), "openai-responses")

    def anthropic_tools(self) -> list[dict[str, Any]]:
        return definitions.export(self.tools(), "anthropic")

    def openai_agents_tools(self) -> list[FunctionTool]:
        """OpenAI Agents SDK tools; the SDK's approval (`needs_approval`, then `state.approve`)
        is the human rung, so they include the costly and destructive tools."""
        from .openai_agents import function_tools

        return function_tools(self)

    def langchain_tools(self) -> list[StructuredTool]:
        from .langchain import structured_tools

        return structured_tools(self)

    def confirmation_for(self, call_id: str) -> Confirmation | None:
        """The question an interrupted agent run waits on for this tool call: show it to the human
        before `state.approve(item)`."""
        pending = self._waiting.get(call_id)
        return pending.confirmation if isinstance(pending, Pending) else None

    # ------------------------------------------------------------------ calls

    async def call(self, name: str, arguments: Arguments = None) -> dict[str, Any]:
        """Run a tool as the MCP server does: its result as JSON-able data (the structured result,
        or the error contract with `is_error: true`), ready to go back to the model."""
        if self.approve is None:
            try:
                op, given = self._parse(name, arguments)
            except ToolError as error:
                return self.error(error)
            return _without_mcp(op, self._data(await self._run(op, given, self._no_human)))
        started = await self.ask(name, arguments)
        if not isinstance(started, Pending):
            return started
        return await self.answer(started, await self._approved(started.confirmation))

    async def read_resource(self, uri: str) -> bytes | Any:
        """What a link in a result points at, read as the MCP server's resources/read would: a
        voicemail's recording as its MP3 bytes, a contact or employee as JSON data. Raises
        ToolError (`not_found`, `too_large`, ...) if it cannot be read."""
        found = resolve(uri, self._operations)
        if found is None:
            raise ToolError("invalid_argument", unknown(uri, self._operations), field="uri")
        template, op, id = found
        async with self._app() as app:
            [contents] = await app.resources.read(template, op, id, self._tenant)
        if isinstance(contents, types.BlobResourceContents):
            return base64.b64decode(contents.blob)
        return json.loads(contents.text)

    def call_sync(self, name: str, arguments: Arguments = None) -> dict[str, Any]:
        """`call` for code without an event loop (each call opens its own connections)."""
        return anyio.run(self.call, name, arguments)

    async def __aenter__(self) -> Toolkit:
        app = await self._stack.enter_async_context(assemble(self.settings))
        self._open = (asyncio.get_running_loop(), app)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = None
        await self._stack.aclose()

    # ------------------------------------------------------------------ the two rounds (confirmation.py)

    async def ask(self, name: str, arguments: Arguments) -> Pending | dict[str, Any]:
        """Round one: the result, or, where a human's yes is needed, the question (nothing sent)."""
        try:
            op, given = self._parse(name, arguments)
        except ToolError as error:
            return self.error(error)
        result = await self._run(op, given, self._ask_channel)
        if not isinstance(result, types.InputRequiredResult):
            return self._data(result)
        request = (result.input_requests or {})[CONFIRM_KEY]
        assert isinstance(request, types.ElicitRequest)  # the gate's question: a form, or a page to open
        question = request.params.message
        sent = validate(op, {k: v for k, v in given.items() if k != TOKEN_ARGUMENT}).upstream_fields()
        return Pending(op, given, Confirmation(op.name, sent, question), result.request_state or "")

    async def answer(self, pending: Pending, approved: bool) -> dict[str, Any]:
        """Round two: the human's answer. Sent only after a yes, and only for unchanged facts."""
        answer = types.ElicitResult(
            action="accept" if approved else "decline", content={CONFIRM_KEY: True} if approved else None
        )
        channel = replace(
            self._ask_channel, request_state=pending.state, input_responses={CONFIRM_KEY: answer}
        )
        return self._data(await self._run(pending.op, pending.arguments, channel))

    def remember(self, call_id: str, started: Pending | dict[str, Any]) -> None:
        """Keep round one's outcome for the tool call that comes later (an agent run resumed
        after approval): its question, or the answer it already has."""
        self._waiting[call_id] = started
        while len(self._waiting) > MAX_WAITING:
            self._waiting.popitem(last=False)

    def recall(self, call_id: str) -> Pending | dict[str, Any] | None:
        """What `remember` kept for this call, once."""
        return self._waiting.pop(call_id, None)

    def error(self, error: ToolError) -> dict[str, Any]:
        """A failure as the result data the model is given (the error contract, credentials out)."""
        return result_data(error_result(error, secrets=self._secrets))

    async def _run(
        self, op: Operation, given: dict[str, Any], channel: Channel
    ) -> types.CallToolResult | types.InputRequiredResult:
        async with self._app() as app:
            return await app.pipeline.call(op, given, self._tenant, channel)

    async def _approved(self, confirmation: Confirmation) -> bool:
        """The app's answer: only `True` is a yes; no answer in time, or a failure, is a no."""
        assert self.approve is not None
        with anyio.move_on_after(self.settings.policy.elicit_timeout_seconds):
            try:
                if inspect.iscoroutinefunction(self.approve):
                    answer = await self.approve(confirmation)
                else:  # a sync approve (a terminal prompt) runs in a worker thread
                    answer = await anyio.to_thread.run_sync(
                        self.approve, confirmation, abandon_on_cancel=True
                    )
                    if inspect.isawaitable(answer):
                        answer = await answer
            except Exception as exc:
                log.warning("approve failed (%s); taken as a no", type(exc).__name__)
                return False
            return answer is True
        return False

    # ------------------------------------------------------------------ inside

    def _parse(self, name: str, arguments: Arguments) -> tuple[Operation, dict[str, Any]]:
        op = self._operations.get(name)
        if op is None:
            raise ToolError(
                "invalid_argument",
                catalog.unknown_tool(name, self._operations),
                hint="Call one of the tools you were given.",
            )
        return op, definitions.arguments(op, arguments)

    @contextlib.asynccontextmanager
    async def _app(self) -> AsyncIterator[App]:
        """The open one, if it was opened in this event loop; else one for this call alone."""
        if self._open is not None and self._open[0] is asyncio.get_running_loop():
            yield self._open[1]
            return
        async with assemble(self.settings) as app:
            yield app

    def _data(self, result: types.CallToolResult | types.InputRequiredResult) -> dict[str, Any]:
        if isinstance(result, types.InputRequiredResult):  # never for an answered request state
            return self.error(ToolError("declined", "A question came back unanswered; nothing was sent."))
        return result_data(result)


NO_HUMAN = "cannot ask its user"  # the gate's refusal where no human can be asked (policy/gate.py)


def _without_mcp(op: Operation, data: dict[str, Any]) -> dict[str, Any]:
    """The gate's refusal for want of a human, in the Toolkit's words: its way to ask is
    `approve=`, not MCP elicitation."""
    error = data.get("error")
    if not data.get("is_error") or not isinstance(error, dict) or NO_HUMAN not in error.get("message", ""):
        return data
    message = (
        f"{op.name} needs a human's yes and this Toolkit {NO_HUMAN}: it was made without approve=. "
        "Nothing was sent."
    )
    hint = (
        "Create the Toolkit with approve=, a function that shows the Confirmation to your user and "
        f'returns True or False. An operator can instead let the agent confirm ({op.kind} = "preview" '
        "in the policy file's [policy]), which stops accidents but not a hijacked agent."
    )
    return {**data, "error": {**error, "message": message, "hint": hint}}


def result_data(result: types.CallToolResult) -> dict[str, Any]:
    """A tool result as JSON-able data: the structured result, or the error contract with
    `is_error`; a link (a voicemail's recording) as how to fetch it; audio asked for inline
    as base64."""
    if result.is_error:
        return {**(result.structured_content or {}), "is_error": True}
    data: dict[str, Any] = dict(result.structured_content or {})
    if result.structured_content is None:
        data["text"] = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    for content in result.content:
        if isinstance(content, types.ResourceLink):
            data["fetch"] = (
                f"Not in this result: the application reads {content.uri} with "
                "Toolkit.read_resource(uri) when a person asks for it."
            )
        if isinstance(content, types.AudioContent):
            data["audio"] = {"mime_type": content.mime_type, "base64": content.data}
    return data
