"""relatel-mcp: the Relatel phone-system API as MCP tools, and as function-calling tools
(`from relatel_mcp import Toolkit`) for chat assistants that do not speak MCP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Confirmation", "Toolkit", "__version__"]

if TYPE_CHECKING:
    from .functions.confirmation import Confirmation
    from .functions.toolkit import Toolkit


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `relatel_mcp.sandbox` and the catalogue load nothing more.
    if name in ("Confirmation", "Toolkit"):
        from .functions import toolkit

        return getattr(toolkit, name)
    raise AttributeError(f"module 'relatel_mcp' has no attribute {name!r}")
