"""`relatel-mcp`: serve (the default), tools, audit, sandbox, login, whoami, logout.

relatel-mcp                      serve MCP over stdio (RELATEL_TOKEN or the stored login, RELATEL_BASE_URL)
relatel-mcp serve --sandbox      the same, against a built-in simulated Relatel account
relatel-mcp tools                print the catalogue
relatel-mcp export --format F    print the tool definitions for function calling (or MCP) as JSON
relatel-mcp audit                print the latest audit records; filter, export (JSON lines, CSV) or prune them
relatel-mcp sandbox --port P     run the simulated Relatel API on its own
relatel-mcp login                log in with Relatel (OAuth) and keep the token for the server
relatel-mcp whoami / logout      who the stored token acts as / forget it
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import json
import logging
import signal
import sys
import tempfile
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

from . import __version__, logs
from .app import App, assemble, described_tools, offered
from .core import catalog, traces
from .core.catalog import CatalogError
from .core.errors import ConfigError, StartUpError
from .core.sanitize import clean_data
from .front.running import GRACE_SECONDS, StdinLines, Stop, stop_gently, stoppable
from .functions import definitions
from .oauth.relatel import DEFAULT_REDIRECT_URI, RelatelApp
from .policy import PolicyError
from .policy.audit import DECISIONS, HOUR, RETENTION_TOOL, Pruned, prune, prune_due
from .policy.rules import ALIASES, MODES
from .settings import (
    DEFAULT_BASE_URL,
    LOG_LEVELS,
    Environment,
    Settings,
    audit_retention,
    check_base_url,
    default_state_dir,
    load_settings,
    log_level,
)
from .store import AuditFilter, StoreUnavailable, open_store, stamp
from .store.base import unusable_state_directory
from .store.schema import AUDIT_FIELDS

if TYPE_CHECKING:
    from .front.transports import HttpOptions
    from .store.login import Identity, StoredLogin

# Imported where a command needs them, not at start-up: the HTTP transports and uvicorn's
# protocol (serve --transport http|sse), the OAuth login (login, whoami, logout), the sandbox.

SANDBOX_TOKEN = "sandbox-admin"
COMMANDS = ("serve", "tools", "export", "audit", "sandbox", "login", "whoami", "logout")


# What a user can fix: each says which setting to change. Anything else is a bug, with its traceback.
START_UP_ERRORS = (CatalogError, PolicyError, StartUpError)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    level = args.log_level
    try:
        level = log_level(args.log_level)
        logs.setup(level)
        catalog.load()
        args.run(args)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:  # e.g. `relatel-mcp tools | head`
        sys.stderr.close()
    except Exception as exc:
        problem = _start_up_error(exc)
        if problem is None:
            raise
        if level == "debug":
            traceback.print_exception(exc)
        print(f"relatel-mcp: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line, or exit 2 with the usage of the command it was meant for."""
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]  # serving is the default command
    parser = _parser()
    if argv[0] not in COMMANDS and not argv[0].startswith("-"):
        _fail(parser, f"unknown command {argv[0]!r}", _did_you_mean([argv[0]], COMMANDS))
    return parser.parse_args(argv)


def _start_up_error(exc: BaseException) -> BaseException | None:
    """The error a user can fix, also from inside the task groups (ExceptionGroup) of start-up."""
    if isinstance(exc, START_UP_ERRORS):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next((found for e in exc.exceptions if (found := _start_up_error(e))), None)
    return None


def _did_you_mean(words: Iterable[str], choices: Iterable[str]) -> str:
    """The closest choice to each mistyped word: "did you mean --sandbox?" ("" if none is close)."""
    import difflib  # only for a mistake

    options = list(choices)
    close = [found[0] for word in words if (found := difflib.get_close_matches(word, options, n=1))]
    return f"did you mean {', '.join(close)}?" if close else ""


def _fail(parser: argparse.ArgumentParser, problem: str, suggestion: str) -> None:
    """argparse's error (usage, then the problem; exit 2) with the suggestion last, on its own
    line, where it is seen under a long usage."""
    parser.print_usage(sys.stderr)
    parser.exit(2, f"{parser.prog}: error: {problem}\n" + (f"{suggestion}\n" if suggestion else ""))


class _Parser(argparse.ArgumentParser):
    """argparse whose unknown options are reported by the command they were given to (with its
    usage), each with the closest option it has."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command: argparse.ArgumentParser = getattr(parsed, "command", self)
            options = list(command._option_string_actions)
            words = [extra.split("=")[0] for extra in extras if extra.startswith("-")]
            _fail(command, f"unrecognized arguments: {' '.join(extras)}", _did_you_mean(words, options))
        return parsed


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="relatel-mcp", description="The Relatel API as MCP tools.")
    parser.add_argument("--version", action="version", version=f"relatel-mcp {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="{" + ",".join(COMMANDS) + "}")

    serve = commands.add_parser("serve", help="serve MCP (the default command)")
    serve.add_argument("--transport", choices=("stdio", "http", "sse"), default="stdio")
    _http_options(serve)
    serve.add_argument(
        "--sandbox",
        action="store_true",
        default=None,
        help="use a built-in simulated Relatel account (env RELATEL_MCP_SANDBOX=1)",
    )
    serve.add_argument("--base-url", help="Relatel API base URL (env RELATEL_BASE_URL)")
    serve.add_argument(
        "--all-tools",
        action="store_true",
        default=None,
        help="list every tool, also those the account lacks admin rights, a plan or the M2M agreement "
        "for (env RELATEL_MCP_ALL_TOOLS=1; they are refused upstream)",
    )
    _policy_options(serve)
    _state_dir_option(serve)
    _retention_option(serve)
    serve.set_defaults(run=_serve)

    tools = commands.add_parser("tools", help="print the tool catalogue")
    tools.add_argument("--markdown", action="store_true", help="as the Markdown table in docs/tools.md")
    tools.set_defaults(run=_tools)

    export = commands.add_parser(
        "export", help="print the tool definitions for function calling (or MCP) as a JSON array"
    )
    export.add_argument("--format", choices=tuple(definitions.FORMATS), required=True)
    export.add_argument(
        "--with-approval",
        action="store_true",
        help="include the costly and destructive tools: the app asks its user before each "
        "(Toolkit(approve=...)); without it they are left out, as for an MCP client that cannot ask",
    )
    _policy_options(export)
    export.set_defaults(run=_export, base_url=None, state_dir=None)

    audit = commands.add_parser(
        "audit",
        help="print or export the audit records (costly and destructive attempts), or prune them",
        description="The audit's records, oldest first: the latest 20 as a table, or every one that "
        "matches as JSON lines or CSV. Each filter narrows them; a filter given twice (or as a "
        "comma-separated list) takes any of its values.",
    )
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="from this ISO date or date-time on (a date: from its start; no zone: UTC)",
    )
    audit.add_argument(
        "--until",
        metavar="WHEN",
        help="before this ISO date or date-time (a date: up to its end; no zone: UTC)",
    )
    audit.add_argument("--tool", action="append", default=[], metavar="NAME", help="of this tool")
    audit.add_argument(
        "--decision",
        action="append",
        default=[],
        metavar="D",
        help=f"with this decision: {', '.join(DECISIONS)}",
    )
    audit.add_argument(
        "--account", action="append", default=[], metavar="ID", help="of this account (its pseudonym)"
    )
    audit.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        help="table (the default: for reading), jsonl (one JSON record a line) or csv (a header, "
        "then a record a line; arguments as JSON): exports, exact and ASCII-only",
    )
    audit.add_argument("--json", action="store_true", help="the same as --format jsonl")
    audit.add_argument(
        "--limit",
        type=int,
        help="only the latest N that match (default: 20 for the table, which is for reading; every "
        "one for an export, which is for keeping, and is read a page at a time)",
    )
    audit.add_argument(
        "--prune",
        action="store_true",
        help="remove the records older than the retention now (a prune that is itself recorded); "
        "servers do it at start-up and hourly",
    )
    _retention_option(audit)
    _state_dir_option(audit)
    audit.set_defaults(run=_audit)

    sandbox = commands.add_parser("sandbox", help="run the simulated Relatel API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8790)
    sandbox.add_argument(
        "--oauth-redirect-uri",
        action="append",
        default=[],
        help="a redirect URI the sandbox's OAuth app accepts beyond loopback ones (repeatable)",
    )
    sandbox.set_defaults(run=_sandbox)

    _login_commands(commands)

    for command in commands.choices.values():
        command.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            help="what goes to stderr, as JSON lines (env RELATEL_MCP_LOG_LEVEL; default info: one line "
            "per tool call and HTTP request; debug also shows start-up tracebacks)",
        )
        command.set_defaults(command=command)
    return parser


def _http_options(serve: argparse.ArgumentParser) -> None:
    """How `serve --transport http|sse` listens, whom it lets in, and how much it takes."""
    serve.add_argument("--host", default="127.0.0.1", help="HTTP: the address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="HTTP: the port (default 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--auth",
        choices=("api-key", "passthrough", "oauth", "none"),
        help="HTTP (env RELATEL_MCP_AUTH; default api-key): api-key (keys in RELATEL_MCP_API_KEYS), passthrough (clients send their Relatel "
        "token), oauth (clients log in: MCP authorization, with RELATEL_CLIENT_ID/SECRET and "
        "--public-url), none (loopback only)",
    )
    serve.add_argument("--stateless", action="store_true", help="HTTP: no sessions (for several replicas)")
    serve.add_argument(
        "--allowed-hosts",
        help="HTTP: Host names to accept besides loopback and the --public-url host "
        "(env RELATEL_MCP_ALLOWED_HOSTS); * = any",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=200, help="HTTP: concurrent sessions (default 200)"
    )
    serve.add_argument(
        "--max-sessions-per-tenant", type=int, default=20, help="HTTP: concurrent sessions per credential"
    )
    serve.add_argument(
        "--session-idle-seconds",
        type=float,
        help="HTTP: end a session that has had no request for this long; its client opens a new one "
        "(env RELATEL_MCP_SESSION_IDLE_SECONDS; default 1800)",
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
        "--registrations-per-client",
        type=int,
        default=20,
        help="HTTP oauth: client registrations per hour from one address (default 20; raise it behind "
        "a reverse proxy)",
    )
    serve.add_argument(
        "--max-waiting-clients",
        type=int,
        default=1000,
        help="HTTP oauth: registered clients yet to complete a login, in all (default 1000; each "
        "expires a day after registering)",
    )
    serve.add_argument(
        "--public-url",
        help="HTTP: the URL browsers reach this server at, for approval pages (env RELATEL_MCP_PUBLIC_URL)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=1_048_576, help="HTTP: request body limit")


def _login_commands(commands: Any) -> None:
    """login, whoami, logout: the token `relatel-mcp login` keeps for the server."""
    login = commands.add_parser("login", help="log in with Relatel (OAuth) and keep the token")
    login.add_argument("--client-id", help="your Relatel app's client id (env RELATEL_CLIENT_ID)")
    login.add_argument("--client-secret", help="its secret (env RELATEL_CLIENT_SECRET)")
    login.add_argument("--redirect-uri", default=DEFAULT_REDIRECT_URI,
                       help=f"the loopback redirect URI registered for the app (default {DEFAULT_REDIRECT_URI})")  # fmt: skip
    login.add_argument(
        "--no-browser", action="store_true", help="print the URL to open instead of opening it"
    )
    login.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the browser (default 300)"
    )
    login.set_defaults(run=_login)
    whoami = commands.add_parser("whoami", help="who the stored login acts as")
    whoami.set_defaults(run=_whoami)
    logout = commands.add_parser("logout", help="forget the stored login")
    logout.set_defaults(run=_logout)
    for command in (login, whoami, logout):
        command.add_argument("--base-url", help="Relatel API base URL (env RELATEL_BASE_URL)")
        command.add_argument(
            "--state-dir", type=Path, help="where the login is kept (env RELATEL_MCP_STATE_DIR)"
        )


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
    parser.add_argument(
        "--store",
        help="a postgresql:// URL: keep budgets, confirmations and the audit there, shared by "
        "replicas (env RELATEL_MCP_STORE; default: SQLite in the state directory)",
    )


def _retention_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit-retention-days",
        type=int,
        metavar="DAYS",
        help="prune audit records older than this many days (env RELATEL_MCP_AUDIT_RETENTION_DAYS; "
        "default 0: keep every record)",
    )


def _settings(args: argparse.Namespace, state_dir: Path | None = None, sandbox: bool = False) -> Settings:
    """The flags given, over the environment and the policy file (relatel_mcp/settings.py)."""
    return load_settings(
        sandbox=sandbox,
        config=args.config,
        toolsets=args.toolsets,
        base_url=args.base_url,
        state_dir=state_dir,
        store=getattr(args, "store", None),
        all_tools=getattr(args, "all_tools", None),
        auth=getattr(args, "auth", None),
        allowed_hosts=getattr(args, "allowed_hosts", None),
        public_url=getattr(args, "public_url", None),
        session_idle_seconds=getattr(args, "session_idle_seconds", None),
        audit_retention_days=getattr(args, "audit_retention_days", None),
        costly=args.costly,
        destructive=args.destructive,
        read_only=args.read_only,
        dry_run=args.dry_run,
    )


def _serve(args: argparse.Namespace) -> None:
    sandbox = args.sandbox if args.sandbox is not None else Environment.read().sandbox
    with _state_dir(args, sandbox) as state_dir:
        settings = _settings(args, state_dir, sandbox)
        with traces.exporting(settings.traces.asked_by, settings.traces.problem):  # flushed on every stop
            _serve_with(args, settings)


def _serve_with(args: argparse.Namespace, settings: Settings) -> None:
    if args.transport == "stdio":
        if not settings.sandbox:
            settings.require_token()
        _exit(anyio.run(_serve_stdio, settings))
        return
    from .front.transports import HttpOptions
    from .oauth.clients import RegistrationLimits
    from .web.serving import ConnectionLimits

    remote = settings.remote
    options = HttpOptions(
        host=args.host,
        port=args.port,
        transport=args.transport,
        auth=remote.auth,
        api_keys=remote.api_keys,
        stateless=args.stateless,
        allowed_hosts=remote.allowed_hosts,
        public_url=remote.public_url,
        max_sessions=args.max_sessions,
        max_sessions_per_tenant=args.max_sessions_per_tenant,
        session_idle_seconds=remote.session_idle_seconds,
        max_body_bytes=args.max_body_bytes,
        limits=ConnectionLimits(total=args.max_connections, per_client=args.max_connections_per_client),
        checks_per_client=args.credential_checks_per_client,
        checks_total=args.credential_checks,
        registrations=RegistrationLimits(
            per_client=args.registrations_per_client, waiting=args.max_waiting_clients
        ),
        metrics_token=remote.metrics_token,
    )
    if options.auth == "oauth":  # the sandbox's base URL and a loopback server's port come later
        options = _with_oauth(options, settings, f"http://127.0.0.1:{args.port}")
    options.check()
    if options.auth in ("api-key", "none") and not settings.sandbox:  # one account for every request
        settings.require_token()
    _exit(anyio.run(_serve_http, settings, options))


def _exit(status: int) -> None:
    """0 when the client ended the session, else 128 + the signal that stopped the server."""
    if status:
        raise SystemExit(status)


@contextlib.contextmanager
def _state_dir(args: argparse.Namespace, sandbox: bool) -> Iterator[Path]:
    """Where budgets, used tokens and the audit live. A sandbox trial gets a throwaway directory
    (unless --state-dir says otherwise), so demos never spend the real daily budgets."""
    if args.state_dir is not None or not sandbox:
        yield args.state_dir or default_state_dir()
        return
    # Until the server watches for signals itself (`stoppable`): SIGTERM as an exit that unwinds,
    # so that the directory is removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="relatel-mcp-sandbox-") as throwaway:
        yield Path(throwaway)


async def _serve_http(settings: Settings, options: HttpOptions) -> int:
    return await stoppable(lambda stop: _serve_http_until(stop, settings, options))


async def _serve_http_until(stop: Stop, settings: Settings, options: HttpOptions) -> None:
    from .front.transports import describe, http_app
    from .web.serving import UvicornServer, raise_file_limit

    raise_file_limit(options.limits.total + 100)
    async with (
        _upstream(settings) as settings,
        assemble(settings, api_keys=options.api_keys, metrics_token=options.metrics_token) as app,
    ):
        server = UvicornServer(
            None, options.host, options.port, limits=options.limits, timeout_graceful_shutdown=GRACE_SECONDS
        )
        if options.auth == "oauth":
            options = _with_oauth(options, settings, server.url)
        server.app = http_app(app, options)
        _announce(settings, describe(options, server.url))
        stop.gently = lambda: stop_gently(server)
        async with anyio.create_task_group() as tasks:
            if options.auth in ("api-key", "none"):  # one account for every request: the server's own
                tasks.start_soon(_check_account, app)
            tasks.start_soon(keep_audit, app)
            await server.serve()
            tasks.cancel_scope.cancel()


def _with_oauth(options: HttpOptions, settings: Settings, url: str) -> HttpOptions:
    """The app this server is at Relatel (the sandbox's own with --sandbox), and on loopback a
    public URL that defaults to the server's own address."""
    client_id: str | None
    client_secret: str | None
    if settings.sandbox:
        from .sandbox.oauth import CLIENT_ID, CLIENT_SECRET

        client_id, client_secret = CLIENT_ID, CLIENT_SECRET
    else:
        client_id, client_secret = settings.remote.client_id, settings.remote.client_secret
    app = RelatelApp(settings.base_url, client_id, client_secret) if client_id and client_secret else None
    from .front.transports import is_loopback

    local = url if is_loopback(options.host) else None
    return replace(options, oauth_app=app, public_url=options.public_url or local)


async def _serve_stdio(settings: Settings) -> int:
    return await stoppable(lambda stop: _serve_stdio_until(settings))


async def _serve_stdio_until(settings: Settings) -> None:
    from mcp.server.stdio import stdio_server

    from .front.server import build_server

    async with _upstream(settings) as settings, assemble(settings) as app:
        server = build_server(app)
        _announce(settings)
        async with anyio.create_task_group() as tasks, StdinLines() as stdin:
            tasks.start_soon(_check_account, app)  # while the client starts: what to list
            tasks.start_soon(keep_audit, app)
            async with stdio_server(stdin=cast(Any, stdin)) as (read, write):
                await server.run(read, write, server.create_initialization_options())
            tasks.cancel_scope.cancel()


async def _check_account(app: App) -> None:
    """Say at once when Relatel refuses the token or cannot be reached, rather than at the first
    call; the server keeps serving, so that the client shows the tools' errors too."""
    if problem := await app.read_account():
        print(problem, file=sys.stderr, flush=True)


async def keep_audit(app: App, every: float = HOUR) -> None:
    """While serving, with a retention set: prune the audit at start-up and then every `every`
    seconds (none where a replica sharing the store, or `relatel-mcp audit --prune`, pruned
    within that time). A prune that fails (a store that cannot be reached now) is said in a log
    line and tried again next time: it never stops the serving."""
    days = app.settings.audit_retention_days
    while days:
        try:
            pruned = await prune_due(app.gate.store, days, every)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StoreUnavailable) else type(exc).__name__
            logs.event(logs.audit, "audit_prune_failed", level=logging.WARNING, reason=reason)
        else:
            if pruned is not None:
                logs.event(logs.audit, "audit_pruned", records=pruned.records, older_than=pruned.older_than)
        await anyio.sleep(every)


@contextlib.asynccontextmanager
async def _upstream(settings: Settings) -> AsyncIterator[Settings]:
    """With --sandbox, start the simulated account on a free loopback port and point at it."""
    if not settings.sandbox:
        yield settings
        return
    from .sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        await server.wait_started()
        try:
            yield replace(settings, base_url=server.url, token=SANDBOX_TOKEN)
        finally:
            server.stop()


def _announce(settings: Settings, *lines: str) -> None:
    """Said once everything is up, so that a start-up failure is the only line printed."""
    if settings.sandbox:
        from .sandbox import DEMO_TOKENS

        print(
            f"relatel-mcp: SANDBOX mode: a simulated Relatel account at {settings.base_url}. "
            f"No real calls or SMS are made. Acting as {DEMO_TOKENS[SANDBOX_TOKEN]}. "
            f"Budgets and the audit are kept in {settings.state_dir}.",
            file=sys.stderr,
        )
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()


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
    print(json.dumps(definitions.export(tools, args.format), indent=2, ensure_ascii=False))


def _audit(args: argparse.Namespace) -> None:
    environment = Environment.read()
    if args.prune:
        return _prune(args, environment)
    matching = _audit_filter(args)
    form = _audit_format(args)
    limit = args.limit if args.limit is not None else (20 if form == "table" else None)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    state_dir = args.state_dir or default_state_dir(environment)
    url = args.store or environment.store
    if url is None and not _exists(state_dir / "state.db"):
        said = f"No audit records yet (state directory {state_dir})."
        print(said, file=sys.stdout if form == "table" else sys.stderr)
        if form == "csv":
            csv.writer(sys.stdout).writerow(AUDIT_FIELDS)
        return

    async def show() -> None:
        async with open_store(url, state_dir) as store:
            write = _writer(form)
            shown = 0
            async for record in store.audit_records(matching, latest=limit):
                write(record)
                shown += 1
            if form == "table" and not shown:
                print("No audit records match." if matching != AuditFilter() else "No audit records yet.")

    anyio.run(show)


def _audit_format(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "jsonl"):
        raise ConfigError(f"--json is --format jsonl, and cannot go with --format {args.format}")
    return "jsonl" if args.json else args.format or "table"


def _writer(form: str) -> Callable[[dict[str, Any]], None]:
    """How a record is printed. The table is for reading (cleaned of characters that would hide or
    reorder text on a terminal); the exports are for keeping, exact: JSON with every character
    beyond ASCII escaped, so that nothing an agent wrote acts on the terminal either."""
    if form == "jsonl":
        return lambda record: print(json.dumps(record))
    if form == "csv":
        out = csv.writer(sys.stdout)
        out.writerow(AUDIT_FIELDS)
        return lambda record: out.writerow(
            json.dumps(record[name]) if name == "arguments" else record[name] for name in AUDIT_FIELDS
        )
    return _table_row


def _table_row(record: dict[str, Any]) -> None:
    record = clean_data(record)  # what agents wrote, shown on a terminal
    status = f" HTTP {record['status']}" if record["status"] else ""
    channel = f" via {record['channel']}" if record["channel"] else ""
    print(f"{record['at']}  {record['account']}  {record['tool']:<32} {record['decision']}{channel}{status}")
    print(f"    {json.dumps(record['arguments'], ensure_ascii=False)}")
    if record["upstream_id"] or record["detail"]:
        print(f"    {record['upstream_id'] or record['detail'].splitlines()[0]}")


def _audit_filter(args: argparse.Namespace) -> AuditFilter:
    """The records `relatel-mcp audit` is asked for; a value it cannot mean is a ConfigError
    naming the flag (one line, exit 2)."""
    since = _moment("--since", args.since, end=False)
    until = _moment("--until", args.until, end=True)
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}")
    audited = [op.name for op in catalog.load() if op.gated] + [RETENTION_TOOL]
    tools = _values(args.tool)
    for name in tools:
        if name not in audited:
            known = {op.name for op in catalog.load()}
            why = "is not audited (only costly and destructive tools are)" if name in known else "is no tool"
            close = difflib.get_close_matches(name, audited, n=3)
            hint = (
                f"did you mean {' or '.join(close)}?" if close else f"the audited tools: {', '.join(audited)}"
            )
            raise ConfigError(f"--tool {name!r} {why}; {hint}")
    decisions = _values(args.decision)
    for decision in decisions:
        if decision not in DECISIONS:
            raise ConfigError(
                f"--decision {decision!r} is no decision of the audit; the decisions: {', '.join(DECISIONS)}"
            )
    return AuditFilter(
        since=since, until=until, tools=tools, decisions=decisions, accounts=_values(args.account)
    )


def _values(given: list[str]) -> tuple[str, ...]:
    """A flag given several times, or as a comma-separated list."""
    return tuple(dict.fromkeys(v.strip() for value in given for v in value.split(",") if v.strip()))


def _moment(flag: str, raw: str | None, *, end: bool) -> str | None:
    """An ISO date or date-time as a stamp: a date-time without a zone is UTC; a date is the start
    of its day (UTC), or for `end` the start of the next, so that the day is whole."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            moment = datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return stamp(moment)
    except (ValueError, OverflowError):  # not ISO 8601, or beyond the years datetime holds
        raise ConfigError(
            f"{flag} {raw!r} is no ISO date or date-time of the years 1 to 9999 (e.g. 2026-11-29, "
            "2026-11-29T08:00 in UTC, or 2026-11-29T09:00+01:00)"
        ) from None


def _prune(args: argparse.Namespace, environment: Environment) -> None:
    """`relatel-mcp audit --prune`: what the servers do hourly, now, whenever they last did it."""
    given = [flag for flag in ("since", "until", "tool", "decision", "account", "format", "limit", "json")
             if getattr(args, flag) not in (None, [], False)]  # fmt: skip
    if given:
        raise ConfigError(f"--prune removes by age alone: it takes no --{given[0]}")
    days = audit_retention(args.audit_retention_days, environment)
    if not days:
        raise ConfigError(
            "--prune needs a retention: set RELATEL_MCP_AUDIT_RETENTION_DAYS (or --audit-retention-days) "
            "to the days to keep; unset or 0 keeps every record"
        )
    state_dir = args.state_dir or default_state_dir(environment)
    url = args.store or environment.store
    if url is None and not _exists(state_dir / "state.db"):
        print(f"No audit records yet (state directory {state_dir}): nothing to prune.")
        return

    async def run() -> Pruned | None:
        async with open_store(url, state_dir) as store:
            return await prune(store, days, "command")

    pruned = anyio.run(run)
    if pruned is None:
        print(f"Nothing to prune: no audit record is older than {days} days.")
    else:
        print(f"Pruned {pruned.records} audit records older than {pruned.older_than} ({days} days); "
              "the prune is recorded in the audit.")  # fmt: skip


def _exists(path: Path) -> bool:
    """Is it there? A directory this user may not look into is said in one line, as the store says it."""
    try:
        return path.exists()
    except PermissionError as exc:
        raise unusable_state_directory(path.parent, exc) from None


def _login_place(args: argparse.Namespace) -> tuple[str, StoredLogin]:
    from .store.login import StoredLogin

    environment = Environment.read()
    base_url = check_base_url(args.base_url or environment.base_url or DEFAULT_BASE_URL)
    return base_url, StoredLogin(args.state_dir or default_state_dir(environment))


def _login(args: argparse.Namespace) -> None:
    from .oauth.login import LoginFailed, identify
    from .oauth.login import login as oauth_login

    environment = Environment.read()
    client_id = args.client_id or environment.client_id
    client_secret = args.client_secret or environment.client_secret
    if not client_id or not client_secret:
        raise ConfigError(
            "relatel-mcp login needs your Relatel app: set RELATEL_CLIENT_ID and RELATEL_CLIENT_SECRET "
            "(or --client-id/--client-secret); register one at Relatel with the redirect URI "
            f"{args.redirect_uri}"
        )
    base_url, stored = _login_place(args)
    app = RelatelApp(base_url, client_id, client_secret)

    def show(url: str) -> None:
        if args.no_browser:
            print("Open this URL in a browser to log in with Relatel:", flush=True)
            print(url, flush=True)
        else:
            print(f"Opening your browser to log in with Relatel (or open this URL):\n{url}", flush=True)

    async def run() -> tuple[Identity, str]:
        token = await oauth_login(app, args.redirect_uri, show=show, open_browser=not args.no_browser,
                                  timeout=args.timeout)  # fmt: skip
        who = await identify(base_url, token)
        if who is None:
            raise LoginFailed("Relatel refused the token it had just issued; try relatel-mcp login again")
        return who, stored.save(base_url, token, who)

    who, where = anyio.run(run)
    print(f"Logged in as {who} at {base_url}. The token is kept in {where}; relatel-mcp uses it "
          "when RELATEL_TOKEN is not set.")  # fmt: skip


def _whoami(args: argparse.Namespace) -> None:
    from .oauth.login import LoginFailed, identify

    base_url, stored = _login_place(args)
    token = stored.token(base_url)
    if token is None:
        raise ConfigError(f"not logged in to {base_url}: run relatel-mcp login")
    who = anyio.run(identify, base_url, token)
    if who is None:
        raise LoginFailed("Relatel refused the stored token (destroyed?): run relatel-mcp login again")
    print(f"{who} at {base_url}")


def _logout(args: argparse.Namespace) -> None:
    _, stored = _login_place(args)
    print("Logged out: the stored token is gone." if stored.remove() else "Not logged in: nothing to forget.")


def _sandbox(args: argparse.Namespace) -> None:
    from .sandbox import DEMO_TOKENS, run_sandbox
    from .sandbox.oauth import CLIENT_ID, CLIENT_SECRET

    def ready(url: str) -> None:
        print(f"Relatel sandbox at {url}  (a simulated account; Ctrl-C stops it)")
        for token, who in DEMO_TOKENS.items():
            print(f"  token {token:<18} {who}")
        print(f"  OAuth app: client id {CLIENT_ID}, secret {CLIENT_SECRET}")
        print(f"Try: RELATEL_BASE_URL={url} RELATEL_TOKEN=sandbox-admin relatel-mcp", flush=True)

    run_sandbox(args.host, args.port, ready, tuple(args.oauth_redirect_uri))


if __name__ == "__main__":
    main()
