"""`relatel-mcp`: serve (the default), tools, sandbox.

relatel-mcp                      serve MCP over stdio (RELATEL_TOKEN, RELATEL_BASE_URL)
relatel-mcp serve --sandbox      the same, against a built-in simulated Relatel account
relatel-mcp tools                print the catalogue
relatel-mcp sandbox --port P     run the simulated Relatel API on its own
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence

import anyio

from . import __version__, catalog
from .catalog import CatalogError
from .client import RelatelClient
from .config import ConfigError, Settings

log = logging.getLogger("relatel_mcp")

SANDBOX_TOKEN = "sandbox-admin"


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="relatel-mcp: %(message)s")
    try:
        catalog.load()
        args.run(args)
    except (CatalogError, ConfigError, ValueError) as exc:
        print(f"relatel-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:  # e.g. `relatel-mcp tools | head`
        sys.stderr.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relatel-mcp", description="The Relatel API as MCP tools.")
    parser.add_argument("--version", action="version", version=f"relatel-mcp {__version__}")
    parser.set_defaults(run=_serve, sandbox=False, base_url=None, toolsets=None, unsafe_allow_gated=False)
    commands = parser.add_subparsers(title="commands", metavar="{serve,tools,sandbox}")

    serve = commands.add_parser("serve", help="serve MCP over stdio (the default)")
    serve.add_argument("--sandbox", action="store_true", help="use a built-in simulated Relatel account")
    serve.add_argument("--base-url", help="Relatel API base URL (env RELATEL_BASE_URL)")
    serve.add_argument("--toolsets", help="comma-separated toolsets to offer (env RELATEL_MCP_TOOLSETS)")
    serve.add_argument(
        "--unsafe-allow-gated",
        action="store_true",
        default=None,
        help="UNSAFE: run costly and destructive tools without confirmation (sandbox/tests only)",
    )
    serve.set_defaults(run=_serve)

    tools = commands.add_parser("tools", help="print the tool catalogue")
    tools.add_argument("--markdown", action="store_true", help="as the Markdown table in README.md")
    tools.set_defaults(run=_tools)

    sandbox = commands.add_parser("sandbox", help="run the simulated Relatel API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8790)
    sandbox.set_defaults(run=_sandbox)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    toolsets = frozenset(t.strip() for t in args.toolsets.split(",")) if args.toolsets else None
    return Settings.from_env(
        base_url=args.base_url, toolsets=toolsets, unsafe_allow_gated=args.unsafe_allow_gated
    )


def _serve(args: argparse.Namespace) -> None:
    settings = _settings(args)
    if not args.sandbox:
        settings.require_token()
    anyio.run(_serve_stdio, settings, args.sandbox)


async def _serve_stdio(settings: Settings, sandbox: bool) -> None:
    from mcp.server.stdio import stdio_server

    from .server import build_server

    async with _upstream(settings, sandbox) as settings:
        client = RelatelClient(
            settings.base_url, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout
        )
        try:
            server = build_server(settings, client)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def _upstream(settings: Settings, sandbox: bool) -> AsyncIterator[Settings]:
    """With --sandbox, start the simulated account on a free loopback port and point at it."""
    if not sandbox:
        yield settings
        return
    from dataclasses import replace

    from .sandbox import DEMO_TOKENS, SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        await server.wait_started()
        print(
            f"relatel-mcp: SANDBOX mode: a simulated Relatel account at {server.url}. "
            f"No real calls or SMS are made. Acting as {SANDBOX_TOKEN} ({DEMO_TOKENS[SANDBOX_TOKEN]}).",
            file=sys.stderr,
        )
        try:
            yield replace(settings, base_url=server.url, token=SANDBOX_TOKEN)
        finally:
            server.stop()


def _tools(args: argparse.Namespace) -> None:
    print("\n".join(tools_markdown() if args.markdown else tools_table()))


def tools_table() -> list[str]:
    rows = [(op.name, op.kind, op.toolset, op.method, op.path) for op in catalog.load()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]


def tools_markdown() -> list[str]:
    lines = ["| tool | kind | request | needs | what it does |", "|---|---|---|---|---|"]
    for op in catalog.load():
        needs = ", ".join(op.requires) or ""
        lines.append(f"| `{op.name}` | {op.kind} | `{op.method} {op.path}` | {needs} | {op.description} |")
    return lines


def _sandbox(args: argparse.Namespace) -> None:
    from .sandbox import DEMO_TOKENS, run_sandbox

    def ready(url: str) -> None:
        print(f"Relatel sandbox at {url}  (a simulated account; Ctrl-C stops it)")
        for token, who in DEMO_TOKENS.items():
            print(f"  token {token:<18} {who}")
        print(f"Try: RELATEL_BASE_URL={url} RELATEL_TOKEN=sandbox-admin relatel-mcp", flush=True)

    run_sandbox(args.host, args.port, ready)


if __name__ == "__main__":
    main()
