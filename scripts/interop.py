"""Clients not written here, against the real server: the MCP Inspector CLI over stdio, streamable
HTTP and SSE, the Inspector's `--strict` schema lint of every tool, the MCP conformance suite's
scenarios that apply to any server, and a voicemail's recording followed by link: the Inspector
CLI (stdio, streamable HTTP), the official TypeScript SDK's client (streamable HTTP,
scripts/interop_ts_client.mjs) and the Python SDK 1.x's ClientSession (stdio,
tests/clients/mcp1_resource_link.py) each call download_voicemail, take the `resource_link` from
its content, read it with resources/read and must get the bytes the sandbox serves.

Run by .ci/run after the test suite: .venv/bin/python scripts/interop.py
It installs Node 22 and the npm packages under .ci/node (scripts/node_tools.py), and the Inspector
with `--strict` (see STRICT_INSPECTOR), starts the server against its built-in sandbox on a free
loopback port, and stops every process it starts by its pid. The Python SDK 1.x runs from
.venv-langchain-mcp, which scripts/test makes (mcp<2 cannot share .venv with the server).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from node_tools import NODE_DIR, install_node_tools

EXE = str(Path(sys.executable).with_name("relatel-mcp"))
ROOT = Path(__file__).resolve().parents[1]
MCP1 = ROOT / ".venv-langchain-mcp" / "bin" / "python"  # the Python SDK 1.x, made by scripts/test
VOICEMAIL = 1  # a reception's voicemail: every sandbox token sees it
RECORDING = f"relatel://voicemails/{VOICEMAIL}/recording"
# Scenarios of @modelcontextprotocol/conformance that need nothing but an MCP server. The others
# call fixture tools, prompts and resources of its "everything server" (test_simple_text, ...).
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
    "server-sse-polling",
]
# tools-call-error calls a fixture tool named test_error_handling; a server without it fails.
# Its subject (a failing tool answers isError: true) is checked below with real tools instead.
FIXTURE_BOUND = {"tools-call-error": "Unknown tool 'test_error_handling'"}
# The inspector cannot ask its user (it declares no elicitation), so it is offered every tool but
# the costly and destructive ones, which need a human's yes.
# The Inspector's `--strict` (a tools/list lint for schemas that some clients and model providers
# reject: type arrays, untyped or boolean schemas, remote $refs) is in @modelcontextprotocol/inspector
# 2.x (pinned in .ci/node beside inspector-cli 1.x; it needs Node 22.19 or later, which .ci/node has).
# Findings --strict may report and why they are acceptable, as {(tool, path): reason}. None today:
# every input property has one `type` (a NULLABLE argument is `anyOf` [its value, "clear"]), and
# every output field Relatel may return as null is `anyOf` one-type branches (core/catalog.py).
EXPLAINED: dict[tuple[str, str], str] = {}
OFFERED = sum(
    1
    for line in subprocess.run([EXE, "tools"], capture_output=True, text=True, check=True).stdout.splitlines()
    if line.split()[1] in ("read", "write")
)


def main() -> int:
    node = install_node_tools()
    state = Path(tempfile.mkdtemp(prefix="relatel-mcp-interop-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RELATEL_MCP_STATE_DIR": str(state)}
    server = subprocess.Popen(
        [EXE, "serve", "--sandbox", "--transport", "http", "--auth", "none", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    failures: list[str] = []
    try:
        wait_healthy(url)
        failures += inspector_checks(node, url, env)
        failures += strict_schemas(node, url, env)
        failures += conformance(node, url)
        sound = sandbox_sound(VOICEMAIL)
        failures += inspector_links(node, url, env, sound)
        failures += ts_client_link(node, url, env, sound)
        failures += mcp1_link(env, sound)
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(state, ignore_errors=True)
    print("\ninterop:", "FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


def inspector(node: Path, target: list[str], *args: str, env: dict[str, str] | None = None) -> dict:
    """@modelcontextprotocol/inspector-cli, run from its build directory (it looks for a package.json
    relative to the working directory)."""
    build = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector-cli" / "build"
    done = subprocess.run(
        [str(node), "index.js", *target, *args],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"inspector {' '.join(target)} {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def inspector_checks(node: Path, url: str, env: dict[str, str]) -> list[str]:
    targets = {
        "stdio": [EXE, "serve", "--sandbox"],
        "streamable HTTP": [f"{url}/mcp"],
        "SSE": [f"{url}/sse"],
    }
    failures = []
    for name, target in targets.items():
        try:
            tools = inspector(node, target, "--method", "tools/list", env=env)["tools"]
            me = inspector(
                node, target, "--method", "tools/call", "--tool-name", "get_current_employee", env=env
            )
            bad = inspector(
                node,
                target,
                "--method",
                "tools/call",
                "--tool-name",
                "list_contacts",
                "--tool-arg",
                "limit=500",
                env=env,
            )
            ok = (
                len(tools) == OFFERED
                and me["structuredContent"]["employee"]["name"] == "Mette Hansen"
                and bad["isError"] is True
                and bad["structuredContent"]["error"]["field"] == "limit"
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            ok, tools = False, []
            print(f"  {exc}")
        print(
            f"inspector-cli over {name}: {len(tools)} tools listed, a call and a failing call: {'ok' if ok else 'FAILED'}"
        )
        if not ok:
            failures.append(f"inspector over {name}")
    return failures


def strict_schemas(node: Path, url: str, env: dict[str, str]) -> list[str]:
    """The Inspector's --strict lint of tools/list: every tool (the operator's preview opt-in lists
    the gated ones too, over stdio), and the list a client that cannot ask its user gets over HTTP.
    Any finding fails, but those EXPLAINED."""
    cli = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "cli" / "build"
    home = Path(tempfile.mkdtemp(prefix="relatel-mcp-inspector-home-"))  # its catalog file goes there
    targets = {
        "every tool, over stdio": [EXE, "serve", "--sandbox", "--costly=preview", "--destructive=preview"],
        "streamable HTTP": [f"{url}/mcp"],
    }
    failures = []
    try:
        for name, target in targets.items():
            done = subprocess.run(
                [str(node), str(cli / "index.js"), "--method", "tools/list", "--strict", "--format", "json", *target],
                capture_output=True, text=True, timeout=120, env={**env, "HOME": str(home)},
            )  # fmt: skip
            try:
                answer = json.loads(done.stdout)
                tools = len(answer["result"]["tools"])
            except (ValueError, KeyError):
                print(f"  {done.stderr.strip()[-300:]}")
                answer, tools = {}, 0
            findings = [
                f"{finding['severity']}: {result['toolName']} {finding['schema']}.{finding['path']}: {finding['issue']}"
                for result in answer.get("schemaFindings", [])
                for finding in result["findings"]
                if (result["toolName"], f"{finding['schema']}.{finding['path']}") not in EXPLAINED
            ]
            ok = done.returncode == 0 and tools > 0 and not findings
            verdict = "ok" if ok else "FAILED"
            print(
                f"inspector --strict, {name}: {tools} tools, {len(findings)} findings unexplained: {verdict}"
            )
            for finding in findings:
                print(f"  {finding[:300]}")
            if not ok:
                failures.append(f"inspector --strict ({name})")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return failures


def conformance(node: Path, url: str) -> list[str]:
    env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ['PATH']}"}
    failures = []
    for scenario in [*SCENARIOS, *FIXTURE_BOUND]:
        done = subprocess.run(
            ["npx", "--no-install", "conformance", "server", "--url", f"{url}/mcp", "--scenario", scenario],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
        summary = next((line for line in output.splitlines() if line.startswith("Passed:")), "no summary")
        if scenario in FIXTURE_BOUND:
            expected = done.returncode != 0 and FIXTURE_BOUND[scenario] in output
            verdict = "fails only for lack of its fixture tool (expected)" if expected else "UNEXPECTED"
        else:
            expected = done.returncode == 0
            verdict = "passed" if expected else "FAILED"
        print(f"conformance {scenario}: {summary} -> {verdict}")
        if not expected:
            failures.append(f"conformance {scenario}")
    return failures


def sandbox_sound(vm_id: int) -> bytes:
    """The recording as the sandbox serves it: GET /api/v2/voice_mails/N/sound with the token the
    server's --sandbox acts with, from a sandbox of this checkout (the server's own, in its process,
    has no address of its own to ask; both are built from the same seed)."""
    from relatel_mcp.sandbox import SandboxServer

    with SandboxServer() as sandbox:
        request = urllib.request.Request(
            f"{sandbox.url}/api/v2/voice_mails/{vm_id}/sound",
            headers={"Authorization": "Bearer sandbox-admin"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


def recording_verdict(client: str, link: dict | None, read: dict | None, sound: bytes) -> list[str]:
    """Print what a client made of the link (its fields) and of reading it (`read`: the contents'
    mimeType, and the blob's length and sha256); a failure unless it is the link to the voicemail's
    recording and the read gave the very bytes the sandbox serves."""
    link_expected = {"uri": RECORDING, "mimeType": "audio/mpeg", "size": len(sound)}
    read_expected = {
        "mimeType": "audio/mpeg",
        "bytes": len(sound),
        "sha256": hashlib.sha256(sound).hexdigest(),
    }
    fields = {k: link.get(k) for k in link_expected} if link else None
    ok = fields == link_expected and read == read_expected
    print(
        f"{client}: resource_link {json.dumps(fields) if fields else 'MISSING'}; resources/read gave "
        f"{json.dumps(read) if read else 'nothing'}; the sandbox serves {len(sound):,} bytes: {'ok' if ok else 'FAILED'}"
    )
    return [] if ok else [client]


def blob_read(contents: dict) -> dict:
    """One resources/read contents entry as recording_verdict compares it."""
    data = base64.b64decode(contents.get("blob") or "")
    return {
        "mimeType": contents.get("mimeType"),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def inspector_links(node: Path, url: str, env: dict[str, str], sound: bytes) -> list[str]:
    """The Inspector CLI calls download_voicemail, then reads the resource_link's uri."""
    failures = []
    for name, target in {"stdio": [EXE, "serve", "--sandbox"], "streamable HTTP": [f"{url}/mcp"]}.items():
        link, read = None, None
        try:
            result = inspector(
                node, target, "--method", "tools/call", "--tool-name", "download_voicemail",
                "--tool-arg", f"id={VOICEMAIL}", env=env,
            )  # fmt: skip
            print(f"  inspector-cli over {name}: content {[c.get('type') for c in result['content']]}")
            link = next((c for c in result["content"] if c.get("type") == "resource_link"), None)
            if link:
                answer = inspector(node, target, "--method", "resources/read", "--uri", link["uri"], env=env)
                [read] = [blob_read(contents) for contents in answer["contents"]]
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            print(f"  {exc}")
        failures += recording_verdict(f"inspector-cli over {name}, recording by link", link, read, sound)
    return failures


def ts_client_link(node: Path, url: str, env: dict[str, str], sound: bytes) -> list[str]:
    """The official TypeScript SDK's Client (scripts/interop_ts_client.mjs) over streamable HTTP;
    the same call with `inline: true` must carry the same bytes as audio content."""
    client = "TypeScript SDK client over streamable HTTP, recording by link"
    done = subprocess.run(
        [str(node), str(ROOT / "scripts" / "interop_ts_client.mjs"), f"{url}/mcp", str(VOICEMAIL)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    link, read, inline_ok = None, None, False
    try:
        report = json.loads(done.stdout)
        print(
            f"  TypeScript SDK {report['sdk']} ({report['protocolVersion']}): content {report['contentTypes']}, "
            f"with inline: true {report['inlineContentTypes']}"
        )
        link = report["link"]
        [read] = [{k: r.get(k) for k in ("mimeType", "blobBytes", "sha256")} for r in report["read"]]
        read["bytes"] = read.pop("blobBytes")
        inline_ok = report["inlineAudioSha256"] == hashlib.sha256(sound).hexdigest()
    except (KeyError, ValueError, TypeError) as exc:
        print(
            f"  {exc!r}"
            + (f"; exit {done.returncode}: {done.stderr.strip()[-300:]}" if done.returncode else "")
        )
    failures = recording_verdict(client, link, read, sound)
    if not inline_ok:
        print(f"{client}: with inline: true the audio content is not the sandbox's bytes: FAILED")
    return failures or ([] if inline_ok else [client])


def mcp1_link(env: dict[str, str], sound: bytes) -> list[str]:
    """The Python SDK 1.x's ClientSession (tests/clients/mcp1_resource_link.py) over stdio: the link
    must be parsed as its `ResourceLink` and the read as `BlobResourceContents`."""
    client = "Python SDK 1.x ClientSession over stdio, recording by link"
    if not MCP1.exists():
        print(f"{client}: {MCP1} is missing (scripts/test makes it): FAILED")
        return [client]
    done = subprocess.run(
        [str(MCP1), str(ROOT / "tests" / "clients" / "mcp1_resource_link.py"), str(VOICEMAIL), EXE, "serve", "--sandbox"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    link, read = None, None
    try:
        report = json.loads(done.stdout)
        print(
            f"  Python mcp {report['mcp']} ({report['protocolVersion']}): content {report['content']}, "
            f"with inline: true {report['inlineContent']}"
        )
        link = report["link"] if "ResourceLink" in report["content"] else None
        [read] = [
            {"mimeType": r["mimeType"], "bytes": r["blobBytes"], "sha256": r["sha256"]}
            for r in report["read"]
            if r["class"] == "BlobResourceContents"
        ]
    except (KeyError, ValueError, TypeError) as exc:
        print(
            f"  {exc!r}"
            + (f"; exit {done.returncode}: {done.stderr.strip()[-300:]}" if done.returncode else "")
        )
    return recording_verdict(client, link, read, sound)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not become healthy")


if __name__ == "__main__":
    sys.exit(main())
