"""An MCP client not written here: the Python SDK 1.x (`mcp<2`, in .venv-langchain-mcp beside
langchain-mcp-adapters) with its `ClientSession` over stdio. Run by scripts/interop.py:

    python mcp1_resource_link.py <voicemail id> <relatel-mcp command and arguments...>

It calls download_voicemail for the voicemail, looks for a `ResourceLink` among the content the SDK
parsed, reads the link's uri with resources/read and prints one JSON object: the SDK's version, the
protocol version, the content's classes, the link's fields, what the read gave (classes, fields,
the blob's length in bytes and sha256) and the content classes of the same call with `inline: true`.
"""

import asyncio
import base64
import hashlib
import json
import sys
from importlib.metadata import version

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


async def main(vm_id: int, command: list[str]) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        started = await session.initialize()
        result = await session.call_tool("download_voicemail", {"id": vm_id})
        links = [c for c in result.content if isinstance(c, types.ResourceLink)]
        report = {
            "mcp": version("mcp"),
            "protocolVersion": started.protocolVersion,
            "isError": result.isError,
            "content": [type(c).__name__ for c in result.content],
            "link": links[0].model_dump(mode="json", exclude_none=True) if links else None,
        }
        if links:
            answer = await session.read_resource(links[0].uri)
            report["read"] = []
            for contents in answer.contents:
                blob = (
                    base64.b64decode(contents.blob)
                    if isinstance(contents, types.BlobResourceContents)
                    else b""
                )
                report["read"].append(
                    {
                        "class": type(contents).__name__,
                        "uri": str(contents.uri),
                        "mimeType": contents.mimeType,
                        "blobBytes": len(blob),
                        "sha256": hashlib.sha256(blob).hexdigest(),
                    }
                )
        inline = await session.call_tool("download_voicemail", {"id": vm_id, "inline": True})
        report["inlineContent"] = [type(c).__name__ for c in inline.content]
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:]))
