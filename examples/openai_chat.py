"""A minimal chat loop: OpenAI Chat Completions with relatel-mcp's tools, and the user asked in the
terminal before anything costly or destructive is sent.

    pip install . openai                   # from a clone (once published: pip install relatel-mcp openai)
    RELATEL_TOKEN=... OPENAI_API_KEY=... python examples/openai_chat.py

(Without a Relatel account: `relatel-mcp sandbox` prints a URL; set RELATEL_BASE_URL to it and
RELATEL_TOKEN=sandbox-admin. Calls and SMS then land in the sandbox's outbox.)
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from openai import AsyncOpenAI

from relatel_mcp import Confirmation, Toolkit

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1-mini")
SYSTEM = "You work the user's Relatel phone system with your tools. Phone numbers as people write them."


def approve(confirmation: Confirmation) -> bool:
    """The user's yes to the question relatel-mcp composed from what it will really do."""
    print(f"\n{confirmation.question}")
    ask = "Send this SMS?" if confirmation.tool.endswith("_sms") else "Go ahead?"
    return input(f"{ask} [y/N] ").strip().lower() == "y"


async def chat(client: AsyncOpenAI, toolkit: Toolkit, messages: list[Any]) -> str:
    """One turn of the user's: the model calls tools until it answers in words."""
    while True:
        response = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=toolkit.openai_tools()
        )
        message = response.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            result = await toolkit.call(call.function.name, call.function.arguments)
            content = json.dumps(result, ensure_ascii=False)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})


async def main() -> None:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    async with Toolkit.from_env(approve=approve) as toolkit:
        client = AsyncOpenAI()
        while line := input("\nyou> ").strip():
            messages.append({"role": "user", "content": line})
            print(await chat(client, toolkit, messages))


if __name__ == "__main__":
    asyncio.run(main())
