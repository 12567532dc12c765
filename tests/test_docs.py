"""Every command, config and link in the docs works: README.md, CONTRIBUTING.md and docs/*.md.

Each fenced code block is given to the first rule that claims it, and a block that no rule claims
fails, so a new kind of example comes with a way to check it. Command lines go through the
server's own parser (a few cheap ones also run for real), client configs are parsed, policy
files are loaded by the server's own loader, Python compiles and imports what exists, docker
lines agree with the Dockerfile and deploy/, and paths in layout trees exist. Every `RELATEL_*`
name in the docs is one the server reads (or one a client config, a test or CI sets, where the
docs say so), and every relative link reaches a file and a heading.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relatel_mcp import cli
from relatel_mcp.core import catalog

from .hygiene import HYGIENE
from .support import env

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
EXE = str(Path(sys.executable).with_name("relatel-mcp"))  # the installed command
EXAMPLE_URL = "https://mcp.example.com/mcp"  # stands for the reader's own server in every config
TEST_ONLY = ("RELATEL_MCP_TEST_STORE", "RELATEL_MCP_REQUIRE_SERVICES")  # set by tests and .ci/run


# ------------------------------------------------------------------------------ reading the docs


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^( *)```([\w-]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)


def read_blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            indent = len(match.group(1))
            body = "\n".join(line[indent:] for line in match.group(3).splitlines())
            found.append(Block(doc, text.count("\n", 0, match.start()) + 1, match.group(2), body))
    return found


BLOCKS = read_blocks()


def prose(doc: Path) -> str:
    """A doc without its code blocks (a `#` line in a shell block is no heading)."""
    return FENCE.sub("", doc.read_text(encoding="utf-8"))


def server_variables() -> set[str]:
    """Every environment variable the server reads: settings.variables() where it exists, and each
    name the code spells out as a string of its own."""
    names: set[str] = set()
    settings = importlib.import_module("relatel_mcp.settings")
    if hasattr(settings, "variables"):
        names.update(settings.variables())
    for source in (ROOT / "relatel_mcp").rglob("*.py"):
        names.update(re.findall(r"[\"'](RELATEL_[A-Z0-9_]+)[\"']", source.read_text(encoding="utf-8")))
    return names


SERVER_VARIABLES = server_variables()


def client_side_variables() -> set[str]:
    """Names a client config refers to (`${NAME}`, `${env:NAME}`): the client's, not the server's."""
    names = set()
    for block in BLOCKS:
        if block.lang == "json":
            names.update(re.findall(r"\$\{(?:env:)?([A-Z][A-Z0-9_]*)\}", block.text))
    return names


# ------------------------------------------------------------------------------ command lines


@dataclass
class Shell:
    """What one shell block has set up so far: the directory and the images built."""

    cwd: Path = ROOT
    images: tuple[str, ...] = ()


LAUNCHERS = (["uvx"], ["pipx", "run"], [])
CLONE = "/path/to/relatel-mcp"  # stands for the reader's clone of this repository in every config


def clone_path(path: str) -> bool:
    """A clone of this repository: `.` (the docs' commands run in it) or the reader's, as CLONE."""
    return path in (".", CLONE)


def check_assignment(name: str, value: str) -> None:
    assert name in SERVER_VARIABLES, f"{name} is no variable the server reads"
    if name == "RELATEL_MCP_SECRET":
        assert len(value) >= 32, f"RELATEL_MCP_SECRET={value}: start-up refuses a secret under 32 characters"
    if name == "RELATEL_MCP_AUTH":
        assert value in ("api-key", "passthrough", "oauth", "none"), value


def without_assignments(words: list[str]) -> list[str]:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0], re.S):
        name, value = words.pop(0).split("=", 1)
        check_assignment(name, value)
    return words


def relatel_mcp_arguments(words: list[str]) -> list[str] | None:
    """The arguments after `relatel-mcp`, however it is started; None if it is not started.
    `uvx --from <a clone> relatel-mcp` runs the clone's (needs no PyPI); a venv's is a clone's."""
    if words[:2] == ["uvx", "--from"] and len(words) > 2:
        assert clone_path(words[2]), f"uvx --from {words[2]}: from a clone (. or {CLONE})"
        words = ["uvx", *words[3:]]
    for launcher in LAUNCHERS:
        n = len(launcher)
        if words[:n] == launcher and len(words) > n and Path(words[n]).name == "relatel-mcp":
            assert words[n] in ("relatel-mcp", ".venv/bin/relatel-mcp", f"{CLONE}/.venv/bin/relatel-mcp"), (
                words
            )
            return words[n + 1 :]
    return None


def check_relatel_mcp(arguments: list[str]) -> None:
    try:
        parsed = cli.parse(arguments)
    except SystemExit as exit_:  # argparse's error (or --help/--version, which exit 0)
        assert exit_.code == 0 and arguments in (["--version"], ["--help"]), (
            f"relatel-mcp {shlex.join(arguments)}"
        )
        return
    assert callable(parsed.run)


def check_claude(words: list[str]) -> None:
    """`claude mcp add [options] name [url] [-- command...]` (Claude Code's own syntax)."""
    words, command = (
        (words[: words.index("--")], words[words.index("--") + 1 :]) if "--" in words else (words, [])
    )
    assert words[:3] == ["claude", "mcp", "add"], words
    rest = words[3:]
    positional = []
    while rest:
        word = rest.pop(0)
        if word in ("-e", "--env"):
            check_assignment(*rest.pop(0).split("=", 1))
        elif word == "--transport":
            assert rest.pop(0) in ("stdio", "http", "sse")
        elif word == "--header":
            assert re.fullmatch(r"Authorization: Bearer \S+", rest.pop(0))
        else:
            assert not word.startswith("-"), f"unknown claude option {word}"
            positional.append(word)
    assert positional[0] == "relatel", positional
    if command:
        arguments = relatel_mcp_arguments(command)
        assert arguments is not None, command
        check_relatel_mcp(arguments)
    else:
        assert positional[1:] == [EXAMPLE_URL], positional


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def check_pip(words: list[str]) -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    for target in words[2:]:
        if target.startswith("-"):
            continue
        match = re.fullmatch(r"(?:\.|relatel-mcp)(?:\[([\w,-]+)\])?", target)
        assert match, f"pip install {target}: installs something else"
        for extra in (match.group(1) or "").split(","):
            assert not extra or extra in extras, f"no extra [{extra}] in pyproject.toml"


def check_script(words: list[str]) -> None:
    """`scripts/test [pytest args]` or `.venv/bin/python scripts/x.py [--flag]`."""
    script = ROOT / words[0]
    assert script.is_file() and os.access(script, os.X_OK), words[0]
    markers = " ".join(pyproject()["tool"]["pytest"]["ini_options"]["markers"])
    for flag, value in itertools.pairwise(words[1:]):
        if flag == "-m":
            for marker in re.findall(r"\b(?!not\b|and\b|or\b)\w+", value):
                assert f"{marker}:" in markers, f"no pytest marker {marker}"


def check_python_script(words: list[str]) -> None:
    script = ROOT / words[1]
    assert script.is_file(), words[1]
    source = script.read_text(encoding="utf-8")
    for flag in words[2:]:
        assert f'"{flag}"' in source, f"{words[1]} takes no {flag}"


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def check_docker(words: list[str], shell: Shell, comments: str) -> None:
    if words[:2] == ["docker", "build"]:
        assert words[-1] == "." and (shell.cwd / "Dockerfile").is_file()
        shell.images += (words[words.index("-t") + 1],)
    elif words[:2] == ["docker", "run"]:
        rest = words[2:]
        while rest[0].startswith("-"):
            option, value = rest.pop(0), rest.pop(0)
            if option == "-p":
                assert value.split(":")[-1] in re.findall(r"^EXPOSE (\d+)", dockerfile(), re.M), value
            elif option == "-e":
                check_assignment(*value.split("=", 1))
            elif option == "-v":
                assert value.split(":")[1] in re.findall(r"^VOLUME (\S+)", dockerfile(), re.M), value
            else:
                raise AssertionError(f"docker run {option}: no rule checks it")
        assert rest[0] in shell.images, f"image {rest[0]} was not built in this block"
        if rest[1:]:
            check_relatel_mcp(rest[1:])
    elif words[:3] == ["docker", "compose", "up"]:
        compose = (shell.cwd / "docker-compose.yml").read_text(encoding="utf-8")
        published = re.findall(r'- "(\d+):\d+"', compose)
        for port in re.findall(r"localhost:(\d+)", comments):
            assert port in published, f"port {port}: docker-compose.yml publishes {published}"
    else:
        raise AssertionError(f"no rule for {shlex.join(words)}")


def check_command(words: list[str], shell: Shell, comments: str) -> None:
    if ">" in words:  # output to a file: the command is what is checked
        words = words[: words.index(">")] + words[words.index(">") + 2 :]
    words = without_assignments(list(words))
    if (arguments := relatel_mcp_arguments(words)) is not None:
        check_relatel_mcp(arguments)
    elif words[:1] == ["claude"]:
        check_claude(words)
    elif words[:3] == ["python3", "-m", "venv"]:
        assert words[3:] == [".venv"], words
    elif words[:2] in (["pip", "install"], [".venv/bin/pip", "install"]):
        check_pip(words)
    elif words[0].startswith("scripts/"):
        check_script(words)
    elif words[0] == ".venv/bin/python" and words[1].startswith("scripts/"):
        check_python_script(words)
    elif words[0] == "cd":
        shell.cwd = shell.cwd / words[1]
        assert shell.cwd.is_dir(), words
    elif words[0] == "cp":
        assert (shell.cwd / words[1]).is_file(), f"{words[1]} is not in {shell.cwd.relative_to(ROOT)}"
    elif words[0] == "docker":
        check_docker(words, shell, comments)
    else:
        raise AssertionError(f"no rule for the command {shlex.join(words)}")


def check_shell(block: Block) -> None:
    shell = Shell()
    for line in block.text.replace("\\\n", " ").splitlines():
        comments = line.split("#", 1)[1] if "#" in line else ""
        words = shlex.split(line, comments=True)
        while words:  # a && b && c
            end = words.index("&&") if "&&" in words else len(words)
            check_command(words[:end], shell, comments)
            words = words[end + 1 :]


# ------------------------------------------------------------------------------ the other blocks


def check_client_config(block: Block) -> None:
    config = json.loads(block.text)
    servers = config.get("mcpServers") or config["servers"]
    assert list(servers) == ["relatel"], servers
    client_side = client_side_variables()
    for server in servers.values():
        if "command" in server:
            words = [server["command"], *server["args"]]
            if words[:3] == ["npx", "-y", "mcp-remote"]:  # a local bridge to the remote server
                assert words[3] == EXAMPLE_URL and words[4] == "--header", words
                assert re.fullmatch(r"Authorization:\$\{\w+\}", words[5]), words[5]
            else:
                arguments = relatel_mcp_arguments(words)
                assert arguments is not None, words
                check_relatel_mcp(arguments)
            for name in server.get("env", {}):
                assert name in SERVER_VARIABLES or name in client_side, name
        else:
            assert server["url"] == EXAMPLE_URL
            for value in server.get("headers", {}).values():
                assert re.fullmatch(r"Bearer \$\{(env|input):[\w-]+\}", value), value


def check_log_lines(block: Block) -> None:
    """Log lines as logs.py writes them: its loggers, its events, fields the code names."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "relatel_mcp").rglob("*.py"))
    loggers = re.findall(r'getLogger\("([\w.]+)"\)', (ROOT / "relatel_mcp" / "logs.py").read_text())
    for line in block.text.splitlines():
        record = json.loads(line)
        assert record["logger"] in loggers and record["level"] == "info", record
        assert re.search(rf'event\(\s*\w+\.?\w*,\s*"{record["event"]}"', source), record["event"]
        for key in set(record) - {"time", "level", "logger", "event"}:
            assert re.search(rf'\b{key}=|"{key}"', source), f"no field {key} in the code"


def check_audit_records(block: Block) -> None:
    """Audit records as `relatel-mcp audit --format jsonl` prints them: its fields in its order, a
    decision and a tool the audit can hold."""
    from relatel_mcp.policy.audit import DECISIONS, RETENTION_TOOL
    from relatel_mcp.store.schema import AUDIT_FIELDS

    audited = {op.name for op in catalog.load() if op.gated} | {RETENTION_TOOL}
    for line in block.text.splitlines():
        record = json.loads(line)
        assert tuple(record) == AUDIT_FIELDS, list(record)
        assert record["decision"] in DECISIONS and record["tool"] in audited, record


def load_policy() -> Callable[[Path], object]:
    """The server's own loader, wherever it lives now."""
    for module in ("relatel_mcp.settings", "relatel_mcp.policy.rules"):
        found = getattr(importlib.import_module(module), "load_policy", None)
        if found is not None:
            return found
    raise AssertionError("no load_policy in relatel_mcp.settings or relatel_mcp.policy.rules")


def check_policy_file(block: Block) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "policy.toml"
        path.write_text(block.text, encoding="utf-8")
        policy = load_policy()(path)
    assert policy is not None


def check_python(block: Block) -> None:
    tree = ast.parse(block.text)
    compile(block.text, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("relatel_mcp"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
    from relatel_mcp import Toolkit

    for node in ast.walk(tree):  # what the example calls on a Toolkit exists
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("toolkit", "Toolkit")
        ):
            assert hasattr(Toolkit, node.attr), f"Toolkit has no {node.attr}"


def check_synopsis(block: Block) -> None:
    """`relatel-mcp <command> [options]   what it does`: each command and option exists."""
    parser = cli._parser()
    commands = next(a for a in parser._actions if a.choices and "serve" in a.choices).choices
    for line in block.text.splitlines():
        if line.startswith(" "):
            continue
        words = line.split()
        assert words[0] == "relatel-mcp", line
        command = words[1] if len(words) > 1 and words[1] in commands else "serve"
        options = {**parser._option_string_actions, **commands[command]._option_string_actions}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in options, f"relatel-mcp {command} has no {option}"


def check_layout(block: Block) -> None:
    for line in block.text.splitlines():
        if line and not line.startswith(" "):
            path = line.split()[0]
            assert (ROOT / path).exists(), f"{path} does not exist"
            assert path.endswith("/") == (ROOT / path).is_dir(), f"{path}: a folder ends with /"


def diagram_layers(text: str) -> list[set[str]]:
    return [set(re.findall(r"\w+", layer)) for layer in text.split("→")]


def check_layers(block: Block) -> None:
    """The layers drawn are tests/test_layers.py's, which holds the code to them."""
    from .test_layers import LAYERS

    drawn = diagram_layers(block.text)
    assert drawn == [{p for p in layer if not p.startswith("__")} for layer in LAYERS], drawn
    for name in set().union(*drawn):
        assert (ROOT / "relatel_mcp" / name).is_dir() or (ROOT / "relatel_mcp" / f"{name}.py").is_file(), name


def is_shell(block: Block) -> bool:
    return block.lang in ("sh", "bash", "shell")


RULES: list[tuple[str, Callable[[Block], bool], Callable[[Block], None]]] = [
    ("shell", is_shell, check_shell),
    ("client config", lambda b: b.lang == "json" and ('"mcpServers"' in b.text or '"servers"' in b.text), check_client_config),
    ("log lines", lambda b: b.lang == "json" and b.text.startswith('{"time"'), check_log_lines),
    ("audit records", lambda b: b.lang == "json" and b.text.startswith('{"id"'), check_audit_records),
    ("policy file", lambda b: b.lang == "toml", check_policy_file),
    ("python", lambda b: b.lang == "python", check_python),
    ("command synopsis", lambda b: b.lang == "" and b.text.startswith("relatel-mcp "), check_synopsis),
    ("layout tree", lambda b: b.lang == "" and b.text.startswith("relatel_mcp/"), check_layout),
    ("layers", lambda b: b.lang == "" and "→" in b.text and len(b.text.splitlines()) == 1, check_layers),
]  # fmt: skip


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_code_block_is_claimed_by_a_rule_and_passes_it(block: Block) -> None:
    for _, claims, check in RULES:
        if claims(block):
            check(block)
            return
    pytest.fail(f"{block}: no rule in tests/test_docs.py checks this ```{block.lang} block; add one")


def test_the_rules_see_the_blocks_they_are_for():
    """A doc whose blocks are all skipped would pass: each rule claims what it should."""
    claimed = {name: [b for b in BLOCKS if claims(b)] for name, claims, _ in RULES}
    assert all(claimed.values()), [name for name, found in claimed.items() if not found]
    assert len(BLOCKS) >= 25


# ------------------------------------------------------------------------------ commands inside prose

INLINE = re.compile(r"`((?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:uvx |pipx run )?relatel-mcp(?:\s[^`]*)?)`(?!\s*→)")


def test_relatel_mcp_commands_in_the_prose_parse():
    """`relatel-mcp ...` written inline: the same parser (a mistyped one shown with → is the point)."""
    found = []
    for doc in DOCS:
        for match in INLINE.finditer(prose(doc)):
            words = without_assignments(shlex.split(match.group(1)))
            arguments = relatel_mcp_arguments(words)
            assert arguments is not None, match.group(1)
            check_relatel_mcp(arguments)
            found.append(match.group(1))
    assert len(found) >= 10, found


# ------------------------------------------------------------------------------ a few, run for real


def test_the_cheap_commands_in_the_docs_run_and_say_what_the_docs_say():
    every_block = "\n".join(b.text for b in BLOCKS) + "\n".join(prose(d) for d in DOCS)
    commands = {"version": ["--version"], "tools": ["tools"], "export": ["export", "--format", "openai"]}
    for arguments in commands.values():
        assert f"relatel-mcp {' '.join(arguments)}" in every_block, arguments
    running = {
        name: subprocess.Popen([EXE, *arguments], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, arguments in commands.items()
    }  # fmt: skip
    out = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        HYGIENE.scan_stderr(f"relatel-mcp {name}", stderr)
        assert process.returncode == 0, (name, stderr)
        out[name] = stdout
    from relatel_mcp import __version__

    assert out["version"].strip() == f"relatel-mcp {__version__}"
    tools = catalog.load()
    assert [line.split()[0] for line in out["tools"].splitlines()] == [op.name for op in tools]
    exported = json.loads(out["export"])
    assert {e["function"]["name"] for e in exported} == {op.name for op in tools if not op.gated}
    assert all(e["type"] == "function" and e["function"]["strict"] is True for e in exported)


# ------------------------------------------------------------------------------ names and links


def occurrences(name: str) -> Iterator[tuple[Path, str]]:
    """Each paragraph (or code block) of the docs that names `name`."""
    for doc in DOCS:
        for paragraph in re.split(r"\n\s*\n", doc.read_text(encoding="utf-8")):
            if name in paragraph:
                yield doc, paragraph


def test_every_environment_variable_in_the_docs_is_one_the_code_reads():
    client_side = client_side_variables()
    named = {name for doc in DOCS for name in re.findall(r"\bRELATEL_[A-Z0-9_]*[A-Z0-9]\b", doc.read_text())}
    assert "RELATEL_TOKEN" in named
    for name in sorted(named - SERVER_VARIABLES):
        if name in TEST_ONLY:  # said to be for tests or CI wherever it is named, and set there
            assert any(name in p.read_text() for p in [ROOT / ".ci" / "run", *(ROOT / "tests").glob("*.py")])
            for doc, paragraph in occurrences(name):
                assert re.search(r"\btests?\b|\bCI\b", paragraph), f"{doc.name}: {name} is for tests; say so"
        elif name in client_side:  # a client config's own variable, named only in those configs
            for doc, paragraph in occurrences(name):
                assert paragraph.lstrip().startswith("```json") or '"mcpServers"' in paragraph, (
                    doc.name,
                    name,
                )
        else:
            raise AssertionError(f"{name} is named in the docs, and relatel-mcp reads no such variable")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*#*$", prose(doc), re.M):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def test_every_relative_link_reaches_a_file_and_a_heading():
    checked = 0
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(doc)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.relative_to(ROOT)}: {target} does not exist"
            if anchor:
                assert file.suffix == ".md", (
                    f"{doc.relative_to(ROOT)}: {target}: an anchor into a non-Markdown file"
                )
                assert anchor in anchors(file), (
                    f"{doc.relative_to(ROOT)}: no heading #{anchor} in {path or doc.name}"
                )
            checked += 1
    assert checked >= 40


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in readme, f"README.md's table of docs lacks docs/{page.name}"


# ------------------------------------------------------------------------------ the configs in the README


def test_the_readme_client_configs_parse_and_start_this_server():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Connect a client") :]
    section = section[: section.index("\n## ")]
    commands = [shlex.split(line) for line in re.findall(r"^claude mcp add .*$", section, re.M)]
    configs = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]
    servers = [s for c in configs for s in (c.get("mcpServers") or c["servers"]).values()]
    # Claude Code, Claude Desktop, VS Code, Cursor; and from a clone: Claude Code, mcpServers, servers
    assert len(commands) == 4 and len(servers) == 8
    command_lines = [c[c.index("--") + 1 :] for c in commands if "--" in c]
    command_lines += [[s["command"], *s["args"]] for s in servers if "command" in s and s["command"] != "npx"]
    published = [line for line in command_lines if line[:2] == ["uvx", "relatel-mcp"]]
    from_a_clone = [line for line in command_lines if line not in published]
    assert len(published) == 5 and len(from_a_clone) == 3, command_lines
    assert {line[0] for line in from_a_clone} == {"uvx", f"{CLONE}/.venv/bin/relatel-mcp"}
    for line in command_lines:
        arguments = relatel_mcp_arguments(line)
        assert arguments is not None, line
        assert callable(cli.parse(arguments).run)  # the server's own parser accepts the arguments
    urls = [s["url"] for s in servers if "url" in s] + [
        a for c in commands for a in c if a.startswith("https:")
    ]
    urls += [s["args"][2] for s in servers if s.get("command") == "npx"]
    assert urls == [EXAMPLE_URL] * 4
    headers = [s["headers"]["Authorization"] for s in servers if "headers" in s]
    assert all(h.startswith("Bearer ${") for h in headers) and len(headers) == 2


# ------------------------------------------------------------------------------ the layers


def package_imports() -> dict[str, set[str]]:
    """Which of our parts (folders and top-level modules) each one imports from: tests/test_layers.py's."""
    from .test_layers import edges

    found: dict[str, set[str]] = {}
    for importer, imported in edges():
        found.setdefault(importer, set()).add(imported)
    return found


def test_the_layers_in_the_architecture_page_are_what_the_code_imports():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = next(b.text for b in BLOCKS if b.doc.name == "architecture.md" and "→" in b.text)
    layer_of = {part: n for n, layer in enumerate(diagram_layers(diagram), 1) for part in layer}
    documented = {}
    for layer, package, imports in re.findall(r"^\| (\d) \| `(\w+)` \| (.+) \|$", page, re.M):
        assert layer_of[package] == int(layer), (
            f"{package} is drawn in layer {layer_of[package]}, not {layer}"
        )
        names = re.sub(r"\([^)]*\)", "", imports.split(":")[0])
        documented[package] = set() if names.startswith("nothing") else set(re.findall(r"\w+", names))
    assert set(documented) == set(layer_of), "every part drawn has a row in the table"
    for unit, imported in package_imports().items():
        if unit.startswith("__"):
            continue
        assert unit in documented, f"docs/architecture.md's layer table lacks {unit}"
        assert imported <= documented[unit], (
            f"{unit} imports {sorted(imported - documented[unit])}: not in the table"
        )


# ------------------------------------------------------------------------------ the flags of remote agents


def test_the_http_flags_table_gives_the_commands_own_defaults():
    """docs/remote.md's table of `serve` flags: each default it names as a value is the one the
    command line takes (a default it describes in words is another test's)."""
    table = (ROOT / "docs" / "remote.md").read_text(encoding="utf-8")
    defaults = vars(cli.parse(["serve"]))
    checked = []
    for flags, default in re.findall(r"^\| (`--[^|]+?) \|[^|]*\| ([^|]*?) \|", table, re.M):
        for flag, value in zip(re.findall(r"`--([\w-]+)", flags), default.split(","), strict=False):
            taken = defaults.get(flag.replace("-", "_"))
            if taken is None:  # read from the environment, else a default of the settings
                continue
            assert str(taken) == {"1 MiB": "1048576", "off": "False"}.get(v := value.strip(" `"), v), flag
            checked.append(flag)
    assert len(checked) >= 12, checked
