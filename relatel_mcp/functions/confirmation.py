"""What a human is asked before a costly or destructive call, and the two rounds an app goes
through to ask (`Toolkit.ask`, then `Toolkit.answer`): the public API the framework adapters use.

Round one resolves the facts, refuses what no yes could allow and returns the question with the
gate's sealed request state (a `Pending` call), sending nothing; round two carries the human's
answer and sends only after a yes, only for unchanged facts. An adapter whose framework asks the
human between two steps of its own (the OpenAI Agents SDK's approval) keeps round one's outcome
under the framework's call id (`remember`, `recall`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import mcp.types as types

from ..core.catalog import Operation
from ..core.errors import ToolError
from ..settings import Settings

Arguments = str | Mapping[str, Any] | None  # an object, or the JSON text of one a model produced


@dataclass(frozen=True)
class Confirmation:
    """What the human is asked before a costly or destructive call is sent."""

    tool: str
    arguments: dict[str, Any]  # exactly what is sent: validated and normalised
    question: str  # the gate's own sentences about the facts it resolved, as MCP clients show them


@dataclass(frozen=True)
class Pending:
    """A call waiting for its human's answer, with the gate's sealed request state."""

    op: Operation
    arguments: dict[str, Any]
    confirmation: Confirmation
    state: str


class TwoRounds(Protocol):
    """What an adapter needs of a Toolkit: its tools and settings, calls, and the two rounds."""

    settings: Settings

    def tools(self, *, human: bool | None = None) -> list[tuple[Operation, types.Tool]]: ...

    async def call(self, name: str, arguments: Arguments = None) -> dict[str, Any]: ...

    def call_sync(self, name: str, arguments: Arguments = None) -> dict[str, Any]: ...

    async def ask(self, name: str, arguments: Arguments) -> Pending | dict[str, Any]: ...

    async def answer(self, pending: Pending, approved: bool) -> dict[str, Any]: ...

    def remember(self, call_id: str, started: Pending | dict[str, Any]) -> None: ...

    def recall(self, call_id: str) -> Pending | dict[str, Any] | None: ...

    def error(self, error: ToolError) -> dict[str, Any]: ...
