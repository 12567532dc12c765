"""The three places relatel-mcp leans on another library's internals, kept here and nowhere else.

None of them has a public API (yet). tests/test_internals.py pins exactly what is relied upon, so
an upgrade that changes it fails there first, with a name, instead of somewhere downstream.

1. uvicorn's h11 protocol class, `H11Protocol` (module `uvicorn.protocols.http.h11_impl`).
   `serving.guarded` subclasses it to cap open connections (in all and per client address) and to
   put deadlines on reading a request's headers and body: uvicorn has no setting for either
   (`limit_concurrency` answers 503 for everyone alike, and nothing bounds a half-sent request).
   Relied upon: `uvicorn.Config(http=<protocol class>)` serves with that class; the class's
   `connection_made`, `connection_lost` and `data_received`; and its attributes `conn` (the
   h11.Connection: `their_state` is h11.IDLE until a request's headers are in, h11.SEND_BODY while
   its body is read), `transport` and `loop`.
   Would replace it: uvicorn settings for read deadlines and connection caps, or a reverse proxy
   that enforces them in front of every deployment.

2. The MCP SDK's `StreamableHTTPSessionManager._session_owners`: open stateful session id -> the
   AuthorizationContext of who opened it (no entry for a session opened without a credential).
   `transports.TenantSessionCap` counts one owner's open sessions from it; the SDK offers only a
   cap for all sessions together (`max_sessions`). And its `_server_instances` (open stateful
   session id -> its transport, for every open session): the open-sessions metric counts it.
   Would replace it: a public read-only view of the sessions and their owners, or a per-owner cap
   in the SDK itself.

3. The MCP SDK's `ServerSession._connection`: the `Connection` a request came in on (one per
   streamable-HTTP or SSE session, or per sessionless request), whose public `exit_stack` the SDK
   unwinds when that connection ends. `server.Handlers` forgets what it keeps for a session there,
   so nothing of a closed session stays. Relied upon: a handler's `ctx.session._connection` is that
   `Connection`, the same one for every request of a session.
   Would replace it: the `Context.connection` the SDK's handlers are to get in place of
   `ServerRequestContext` (the SDK's own TODO(L54)).

Only the HTTP side imports this module (stdio never loads uvicorn). The one private name of the
standard library in use, `logging._srcfile`, stays where it is set (logs.setup), pinned by the
same test file.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.connection import Connection
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["H11Protocol", "connection_of", "open_sessions", "session_owners"]


def session_owners(manager: StreamableHTTPSessionManager) -> Sequence[AuthorizationContext]:
    """Who opened each open stateful session of `manager` that was opened with a credential."""
    return list(manager._session_owners.values())


def open_sessions(manager: StreamableHTTPSessionManager) -> int:
    """How many stateful sessions `manager` has open, with a credential or without."""
    return len(manager._server_instances)


def connection_of(session: ServerSession) -> Connection:
    """The connection a request's session belongs to (its `exit_stack` runs when it ends)."""
    return session._connection
