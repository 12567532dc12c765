"""What a voicemail's recording costs a client: the bytes of the `download_voicemail` result as the
client receives it (the CallToolResult as JSON, by alias, without nulls), before and after the
recording became a resource, and of the resources/read answer that fetches it now.

  before   an earlier relatel-mcp (`--before-tree DIR`, a checkout of a73308d: `git worktree add
           /tmp/before a73308d`, run with this environment's packages), which put the MP3 in the
           result as base64 audio content
  after    this checkout, with default arguments (the facts, a text and a `resource_link`), and
           with `inline: true` (the audio too)

The sandbox's voicemails are 3 to 21 s long, so this benchmark lengthens two of them in its own
sandbox's state (not the seed): voicemail 1 to 30 s and voicemail 2 to 3 minutes. The sandbox serves
each voicemail a real MP3 of its duration (24 kbps: 3,000 bytes a second; sandbox/recordings.py),
in this process on loopback, and both servers read the same recordings from it. Both run as
processes over stdio, as a client starts them (sandbox-admin, rate limiter off), and are measured
through one real MCP client in both protocol eras.
Run: .venv/bin/python benchmarks/recording_result.py --before-tree /tmp/before
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from relatel_mcp.sandbox import SandboxServer, SandboxState

RECORDINGS = {1: 30, 2: 180}  # voicemail id -> seconds, in this benchmark's sandbox only
ERAS = {"2025-11-25": "legacy", "2026-07-28": "auto"}
AFTER = [str(Path(sys.executable).with_name("relatel-mcp"))]


def size(model: Any) -> int:
    """Bytes of a result as a client receives it: its JSON, by alias, without nulls."""
    return len(model.model_dump_json(by_alias=True, exclude_none=True).encode())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


async def measure(
    command: list[str], mode: str, env: dict[str, str], after: bool
) -> dict[int, dict[str, Any]]:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    rows: dict[int, dict[str, Any]] = {}
    with open(os.devnull, "w") as quiet:
        async with Client(stdio_client(params, errlog=quiet), mode=mode) as client:
            for vm_id in RECORDINGS:
                row: dict[str, Any] = {}
                result = await client.call_tool("download_voicemail", {"id": vm_id})
                assert not result.is_error, result
                row["default"] = size(result)
                audio = [c for c in result.content if c.type == "audio"]
                if not after:
                    assert len(audio) == 1, "the earlier code returns the audio"
                    row["audio"] = base64.b64decode(audio[0].data)
                    rows[vm_id] = row
                    continue
                assert not audio, "the recording is not in the result by default"
                link = next(c for c in result.content if c.type == "resource_link")
                inline = await client.call_tool("download_voicemail", {"id": vm_id, "inline": True})
                assert not inline.is_error, inline
                row["inline"] = size(inline)
                row["audio"] = base64.b64decode(next(c for c in inline.content if c.type == "audio").data)
                read = await client.read_resource(link.uri)
                row["read"] = size(read)
                row["blob"] = base64.b64decode(read.contents[0].blob)
                assert row["blob"] == row["audio"] and link.size == len(row["blob"])
                rows[vm_id] = row
            assert client.protocol_version == next(e for e, m in ERAS.items() if m == mode)
    return rows


async def run(url: str, before: list[str]) -> dict[str, dict[str, Any]]:
    env = {
        "RELATEL_TOKEN": "sandbox-admin",
        "RELATEL_BASE_URL": url,
        "RELATEL_MCP_STATE_DIR": tempfile.mkdtemp(prefix="relatel-mcp-bench-"),
        "RELATEL_MCP_RATE_PER_SECOND": "0",
    }
    return {
        era: {
            "before": await measure(before, mode, env, after=False),
            "after": await measure(AFTER, mode, env, after=True),
        }
        for era, mode in ERAS.items()
    }


def main() -> None:
    if sys.argv[1:2] != ["--before-tree"] or len(sys.argv) != 3:
        sys.exit("usage: recording_result.py --before-tree DIR  (DIR: git worktree add /tmp/before a73308d)")
    tree = str(Path(sys.argv[2]).resolve())
    start = f"import sys; sys.path.insert(0, {tree!r}); from relatel_mcp.cli import main; main()"
    state = SandboxState()
    for vm_id, seconds in RECORDINGS.items():
        state.companies[1].voice_mails[vm_id]["duration"] = seconds
    with SandboxServer(state=state) as sandbox:
        served = {vm_id: sandbox_sound(sandbox.url, vm_id) for vm_id in RECORDINGS}
        results = anyio.run(run, sandbox.url, [sys.executable, "-c", start])
    for era, r in results.items():
        for vm_id in RECORDINGS:  # both servers carried the very bytes the sandbox serves
            assert r["before"][vm_id]["audio"] == r["after"][vm_id]["audio"] == served[vm_id], (era, vm_id)
    print(
        "| era | recording | MP3 | before: result (audio inline) | after: result (default) "
        "| after: `inline: true` | after: resources/read |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for era, r in results.items():
        for vm_id, seconds in RECORDINGS.items():
            before, after = r["before"][vm_id], r["after"][vm_id]
            length = f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
            print(
                f"| {era} | {length} (sha256 {sha(served[vm_id])}) | {len(served[vm_id]):,} "
                f"| {before['default']:,} | {after['default']:,} | {after['inline']:,} | {after['read']:,} |"
            )


def sandbox_sound(url: str, vm_id: int) -> bytes:
    """The recording as the sandbox itself serves it."""
    response = httpx2.get(
        f"{url}/api/v2/voice_mails/{vm_id}/sound", headers={"Authorization": "Bearer sandbox-admin"}
    )
    response.raise_for_status()
    return response.content


if __name__ == "__main__":
    main()
