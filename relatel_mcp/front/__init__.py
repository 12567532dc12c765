"""The MCP front door: MCP translated to the assembled app (server.py), and served over
streamable HTTP and SSE with authentication, tenants and session caps (transports.py)."""
