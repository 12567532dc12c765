"""An MCP client not written here: langchain-mcp-adapters loads relatel-mcp's tools over stdio and
calls one. Run by tests/test_langchain.py with the .venv-langchain-mcp interpreter (mcp 1.x):

    python langchain_mcp.py <relatel-mcp command> <env as JSON>

It prints one JSON object: the tools it loaded (name, and the type of its argument schema), what
calling find_contact_by_number gave, and for download_voicemail of voicemail 1: the ToolMessage's
content blocks and artifact, what following its link gave (the adapter's own resources/read:
`get_resources`, each Blob's mime type, metadata, length and sha256), and what the same call with
`inline: true` gave (the adapter turns no MCP audio content into LangChain content: it raises).
"""

import asyncio
import hashlib
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
                "voicemail": await voicemail(client, tools["download_voicemail"]),
            },
            default=str,
        )
    )


async def voicemail(client: MultiServerMCPClient, tool) -> dict:
    """download_voicemail as a LangChain agent runs it (a tool call, answered by a ToolMessage)."""
    call = {"name": tool.name, "args": {"id": 1}, "id": "vm1", "type": "tool_call"}
    message = await tool.ainvoke(call)
    blocks = message.content if isinstance(message.content, list) else []
    links = [b["url"] for b in blocks if isinstance(b, dict) and b.get("type") == "file" and b.get("url")]
    read = []
    for blob in await client.get_resources("relatel", uris=links) if links else []:
        data = blob.as_bytes()
        read.append(
            {
                "mime_type": blob.mimetype,
                "metadata": blob.metadata,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    try:
        inline = await tool.ainvoke({**call, "args": {"id": 1, "inline": True}, "id": "vm2"})
        inline_gave = {"content": inline.content}
    except Exception as error:  # what an agent's run would meet
        inline_gave = {"raised": type(error).__name__, "message": str(error)}
    return {
        "message": type(message).__name__,
        "content": message.content,
        "artifact": message.artifact,
        "read": read,
        "inline": inline_gave,
    }


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
