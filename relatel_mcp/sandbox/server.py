"""Running the sandbox: blocking (`relatel-mcp sandbox`), in a background thread, or as a task."""

from __future__ import annotations

from collections.abc import Callable

from relatel_mcp.sandbox.app import create_app
from relatel_mcp.sandbox.faults import quiet_injected_drops
from relatel_mcp.sandbox.state import SandboxState
from relatel_mcp.web.serving import UvicornServer

DEFAULT_PORT = 8765


class SandboxServer(UvicornServer):
    """One sandbox on one socket, with its state at `.state` (tests read it directly)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
        oauth_redirect_uris: tuple[str, ...] = (),
    ) -> None:
        self.state = state or SandboxState()
        self.state.oauth_redirect_uris += oauth_redirect_uris
        quiet_injected_drops()
        super().__init__(create_app(self.state), host, port, lifespan="off", http="h11", ws="none")


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    ready: Callable[[str], None] | None = None,
    oauth_redirect_uris: tuple[str, ...] = (),
) -> None:
    """Run a sandbox in the foreground (used by `relatel-mcp sandbox --port P`)."""
    SandboxServer(host, port, oauth_redirect_uris=oauth_redirect_uris).run(ready)
