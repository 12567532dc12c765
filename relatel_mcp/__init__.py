"""relatel-mcp: the Relatel phone-system API as MCP tools."""

__version__ = "0.1.0"
