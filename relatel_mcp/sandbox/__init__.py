"""A simulated Relatel company account speaking the Relatel API 2.1.2 over HTTP on loopback.

It is the default upstream for trying relatel-mcp without an account and the upstream of every
test. Costly actions (calls, SMS, orders) never leave it: they land in an outbox.
"""

from relatel_mcp.sandbox.app import create_app
from relatel_mcp.sandbox.auth import DEMO_TOKENS
from relatel_mcp.sandbox.server import SandboxServer, run_sandbox
from relatel_mcp.sandbox.state import SandboxState

__all__ = ["DEMO_TOKENS", "SandboxServer", "SandboxState", "create_app", "run_sandbox"]
