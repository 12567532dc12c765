"""An MCP client not written here: langchain-mcp-adapters loads relatel-mcp's tools over stdio and
calls one. Run by tests/test_langchain.py with the .venv-langchain-mcp interpreter (mcp 1.x):

    python langchain_mcp.py <relatel-mcp command> <env as JSON>

It prints one JSON object: the tools it loaded (name, and the type of its argument schema) and
what calling find_contact_by_number gave.
"""

import asyncio
import json
import sys

from langchain_mcp_adapters.client import MultiServerMCPClient


async def main(command: str, env: dict[str, str]) -> None:
    client = MultiServerMCPClient(
        {"relatel": {"transport": "stdio", "command": command, "args": [], "env": env}}
    )
    tools = {tool.name: tool for tool in await client.get_tools()}
    found = await tools["find_contact_by_number"].ainvoke({"number": "+45 28 11 44 77"})
    print(
        json.dumps(
            {
                "tools": {name: tool.args_schema.get("type") for name, tool in tools.items()},
                "found": found,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
