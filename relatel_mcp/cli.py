"""`relatel-mcp`: serve (the default), tools, audit, sandbox.

relatel-mcp                      serve MCP over stdio (RELATEL_TOKEN, RELATEL_BASE_URL)
relatel-mcp serve --sandbox      the same, against a built-in simulated Relatel account
relatel-mcp tools                print the catalogue
relatel-mcp export --format F    print the tool definitions for function calling (or MCP) as JSON
relatel-mcp audit                print the latest audit records
relatel-mcp sandbox --port P     run the simulated Relatel API on its own
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import anyio

from . import __version__, catalog, function_calling
from .catalog import CatalogError
from .config import ConfigError, Settings, load_settings
from .policy import PolicyError
from .policy.settings import ALIASES, MODES, default_state_dir
from .policy.store import Store
from .sanitize import clean_data
from .server import described_tools, offered, services
from .serving import ConnectionLimits, UvicornServer, raise_file_limit
from .transports import HttpOptions, describe, http_app

SANDBOX_TOKEN = "sandbox-admin"
COMMANDS = ("serve", "tools", "export", "audit", "sandbox")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]  # serving is the default command
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="relatel-mcp: %(message)s")
    try:
        catalog.load()
        args.run(args)
    except (CatalogError, ConfigError, PolicyError, ValueError) as exc:
        print(f"relatel-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:  # e.g. `relatel-mcp tools | head`
        sys.stderr.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relatel-mcp", description="The Relatel API as MCP tools.")
    parser.add_argument("--version", action="version", version=f"relatel-mcp {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="{" + ",".join(COMMANDS) + "}")

    serve = commands.add_parser("serve", help="serve MCP (the default command)")
    serve.add_argument("--transport", choices=("stdio", "http", "sse"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP: the address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="HTTP: the port (default 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--auth",
        choices=("api-key", "passthrough", "none"),
        default=os.environ.get("RELATEL_MCP_AUTH", "api-key"),
        help="HTTP: api-key (keys in RELATEL_MCP_API_KEYS), passthrough (clients send their Relatel "
        "token), none (loopback only)",
    )
    serve.add_argument("--stateless", action="store_true", help="HTTP: no sessions (for several replicas)")
    serve.add_argument(
        "--allowed-hosts",
        default=os.environ.get("RELATEL_MCP_ALLOWED_HOSTS", ""),
        help="HTTP: Host names to accept besides loopback (env RELATEL_MCP_ALLOWED_HOSTS); * = any",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=200, help="HTTP: concurrent sessions (default 200)"
    )
    serve.add_argument(
        "--max-sessions-per-tenant", type=int, default=20, help="HTTP: concurrent sessions per credential"
    )
    serve.add_argument(
        "--max-connections", type=int, default=1000, help="HTTP: open connections in all (default 1000)"
    )
    serve.add_argument(
        "--max-connections-per-client",
        type=int,
        default=100,
        help="HTTP: open connections from one address (default 100; raise it behind a reverse proxy)",
    )
    serve.add_argument(
        "--credential-checks-per-client",
        type=int,
        default=20,
        help="HTTP passthrough: unknown tokens checked upstream per 10 s from one address (default 20)",
    )
    serve.add_argument(
        "--credential-checks",
        type=int,
        default=100,
        help="HTTP passthrough: unknown tokens checked upstream per 10 s in all (default 100)",
    )
    serve.add_argument(
        "--public-url",
        default=os.environ.get("RELATEL_MCP_PUBLIC_URL") or None,
        help="HTTP: the URL browsers reach this server at, for approval pages (env RELATEL_MCP_PUBLIC_URL)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=1_048_576, help="HTTP: request body limit")
    serve.add_argument("--sandbox", action="store_true", help="use a built-in simulated Relatel account")
    serve.add_argument("--base-url", help="Relatel API base URL (env RELATEL_BASE_URL)")
    _policy_options(serve)
    _state_dir_option(serve)
    serve.set_defaults(run=_serve)

    tools = commands.add_parser("tools", help="print the tool catalogue")
    tools.add_argument("--markdown", action="store_true", help="as the Markdown table in README.md")
    tools.set_defaults(run=_tools)

    export = commands.add_parser(
        "export", help="print the tool definitions for function calling (or MCP) as a JSON array"
    )
    export.add_argument("--format", choices=tuple(function_calling.FORMATS), required=True)
    export.add_argument(
        "--with-approval",
        action="store_true",
        help="include the costly and destructive tools: the app asks its user before each "
        "(Toolkit(approve=...)); without it they are left out, as for an MCP client that cannot ask",
    )
    _policy_options(export)
    export.set_defaults(run=_export, base_url=None, state_dir=None)

    audit = commands.add_parser(
        "audit", help="print the latest audit records (costly and destructive attempts)"
    )
    audit.add_argument("--limit", type=int, default=20)
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
    _state_dir_option(audit)
    audit.set_defaults(run=_audit)

    sandbox = commands.add_parser("sandbox", help="run the simulated Relatel API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8790)
    sandbox.set_defaults(run=_sandbox)
    return parser


def _policy_options(parser: argparse.ArgumentParser) -> None:
    """Which tools, and how their calls are confirmed: shared by serve and export."""
    parser.add_argument("--toolsets", help="comma-separated toolsets to offer (env RELATEL_MCP_TOOLSETS)")
    parser.add_argument("--config", type=Path, help="policy file, TOML (env RELATEL_MCP_CONFIG)")
    modes = (*MODES, *ALIASES)
    parser.add_argument(
        "--costly", choices=modes, help="how calls, SMS and orders are confirmed (default confirm)"
    )
    parser.add_argument("--destructive", choices=modes, help="how deletes are confirmed (default confirm)")
    parser.add_argument("--read-only", action="store_true", default=None, help="hide and refuse every change")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="costly and destructive tools return the request instead",
    )


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, help="budgets, tokens and audit (env RELATEL_MCP_STATE_DIR)"
    )


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        config=args.config,
        toolsets=args.toolsets,
        base_url=args.base_url,
        state_dir=args.state_dir,
        costly=args.costly,
        destructive=args.destructive,
        read_only=args.read_only,
        dry_run=args.dry_run,
    )


def _serve(args: argparse.Namespace) -> None:
    settings = _settings(args)
    if args.transport == "stdio":
        if not args.sandbox:
            settings.require_token()
        anyio.run(_serve_stdio, settings, args.sandbox)
        return
    options = HttpOptions(
        host=args.host,
        port=args.port,
        transport=args.transport,
        auth=args.auth,
        api_keys=tuple(k.strip() for k in os.environ.get("RELATEL_MCP_API_KEYS", "").split(",") if k.strip()),
        stateless=args.stateless,
        allowed_hosts=tuple(h.strip() for h in args.allowed_hosts.split(",") if h.strip()),
        public_url=args.public_url,
        max_sessions=args.max_sessions,
        max_sessions_per_tenant=args.max_sessions_per_tenant,
        max_body_bytes=args.max_body_bytes,
        limits=ConnectionLimits(total=args.max_connections, per_client=args.max_connections_per_client),
        checks_per_client=args.credential_checks_per_client,
        checks_total=args.credential_checks,
    )
    options.check()
    if args.auth != "passthrough" and not args.sandbox:
        settings.require_token()
    anyio.run(_serve_http, settings, options, args.sandbox)


async def _serve_http(settings: Settings, options: HttpOptions, sandbox: bool) -> None:
    raise_file_limit(options.limits.total + 100)
    async with _upstream(settings, sandbox) as settings, services(settings, api_keys=options.api_keys) as s:
        app = http_app(settings, s, options)
        server = UvicornServer(app, options.host, options.port, limits=options.limits)
        print(describe(options, server.url), file=sys.stderr, flush=True)
        await server.serve(handle_signals=True)


async def _serve_stdio(settings: Settings, sandbox: bool) -> None:
    from mcp.server.stdio import stdio_server

    from .server import build_server

    async with _upstream(settings, sandbox) as settings, services(settings) as s:
        server = build_server(settings, s)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


@contextlib.asynccontextmanager
async def _upstream(settings: Settings, sandbox: bool) -> AsyncIterator[Settings]:
    """With --sandbox, start the simulated account on a free loopback port and point at it."""
    if not sandbox:
        yield settings
        return
    from .sandbox import DEMO_TOKENS, SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        await server.wait_started()
        print(
            f"relatel-mcp: SANDBOX mode: a simulated Relatel account at {server.url}. "
            f"No real calls or SMS are made. Acting as {DEMO_TOKENS[SANDBOX_TOKEN]}.",
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


def _export(args: argparse.Namespace) -> None:
    settings = _settings(args)
    tools = offered(described_tools(settings), settings.policy, human=args.with_approval)
    print(json.dumps(function_calling.export(tools, args.format), indent=2, ensure_ascii=False))


def _audit(args: argparse.Namespace) -> None:
    state_dir = args.state_dir or default_state_dir()
    if not (state_dir / "state.db").exists():
        print(f"No audit records yet (state directory {state_dir}).")
        return
    store = Store(state_dir)
    try:
        records = list(reversed(store.recent(args.limit)))
    finally:
        store.close()
    for record in clean_data(records):  # what agents wrote, shown on a terminal
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
            continue
        status = f" HTTP {record['status']}" if record["status"] else ""
        channel = f" via {record['channel']}" if record["channel"] else ""
        print(
            f"{record['at']}  {record['tenant']}  {record['tool']:<32} {record['decision']}{channel}{status}"
        )
        print(f"    {json.dumps(record['arguments'], ensure_ascii=False)}")
        if record["upstream_id"] or record["detail"]:
            print(f"    {record['upstream_id'] or record['detail'].splitlines()[0]}")


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
