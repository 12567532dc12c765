"""A minimal chat loop: Anthropic's Messages API with relatel-mcp's tools, and the user asked in
the terminal before anything costly or destructive is sent.

    pip install . anthropic                   # from a clone (once published: pip install relatel-mcp anthropic)
    RELATEL_TOKEN=... ANTHROPIC_API_KEY=... python examples/anthropic_chat.py

(Without a Relatel account: `relatel-mcp sandbox` prints a URL; set RELATEL_BASE_URL to it and
RELATEL_TOKEN=sandbox-admin. Calls and SMS then land in the sandbox's outbox.)
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from anthropic import AsyncAnthropic

from relatel_mcp import Confirmation, Toolkit

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")
SYSTEM = "You work the user's Relatel phone system with your tools. Phone numbers as people write them."


def approve(confirmation: Confirmation) -> bool:
    """The user's yes to the question relatel-mcp composed from what it will really do."""
    print(f"\n{confirmation.question}")
    ask = "Send this SMS?" if confirmation.tool.endswith("_sms") else "Go ahead?"
    return input(f"{ask} [y/N] ").strip().lower() == "y"


async def chat(client: AsyncAnthropic, toolkit: Toolkit, messages: list[Any]) -> str:
    """One turn of the user's: the model uses tools until it answers in words."""
    while True:
        response = await client.messages.create(
            model=MODEL, max_tokens=1024, system=SYSTEM, tools=toolkit.anthropic_tools(), messages=messages
        )
        messages.append({"role": "assistant", "content": response.content})
        uses = [block for block in response.content if block.type == "tool_use"]
        if not uses:
            return "".join(block.text for block in response.content if block.type == "text")
        results = []
        for use in uses:
            result = await toolkit.call(use.name, use.input)
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": use.id,
                    "content": json.dumps(result, ensure_ascii=False),
                    "is_error": bool(result.get("is_error")),
                }
            )
        messages.append({"role": "user", "content": results})


async def main() -> None:
    messages: list[Any] = []
    async with Toolkit.from_env(approve=approve) as toolkit:
        client = AsyncAnthropic()
        while line := input("\nyou> ").strip():
            messages.append({"role": "user", "content": line})
            print(await chat(client, toolkit, messages))


if __name__ == "__main__":
    asyncio.run(main())
