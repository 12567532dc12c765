"""The house plan, held against the code: each folder is a layer and imports only from layers
below it (or its own), no two parts import each other, and only the settings module reads the
environment. docs/architecture.md draws the same layers."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from relatel_mcp.settings import variables

PACKAGE = Path(__file__).resolve().parents[1] / "relatel_mcp"

# Bottom up. A part may import from its own layer and any layer below, never from one above.
LAYERS: list[set[str]] = [
    {"core", "internals"},  # the catalogue, models, errors, results; uvicorn/SDK internals pinned
    {"store"},  # what survives restarts
    {"upstream", "policy"},  # Relatel access; the safety layer
    {"settings", "logs", "web"},  # the one configuration; log lines; web plumbing and approval pages
    {"pipeline", "resources"},  # one call, start to end; documents read on demand
    {"app"},  # the application, assembled once
    {"front", "functions", "oauth", "sandbox"},  # MCP front door; apps without MCP; OAuth; the sandbox
    {"cli", "__main__"},  # the command line
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def part_of(module: str) -> str:
    """The folder (or top-level module) a module belongs to: relatel_mcp.core.catalog -> core."""
    return module.split(".")[1] if "." in module else "__init__"


def imports(module: str, path: Path) -> set[str]:
    """Our modules this one imports, wherever in it (also inside functions and TYPE_CHECKING)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            elif node.module and node.module.startswith("relatel_mcp"):
                base = node.module
            else:
                continue
            names = [f"{base}.{alias.name}" for alias in node.names]
            found.update(name if name in MODULES else base for name in names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("relatel_mcp"))
    return found - {module}


def edges(imports_of: Callable[[str, Path], set[str]] = imports) -> set[tuple[str, str]]:
    """(importer, imported) between parts. The package root offers `__version__` to every layer and
    the Toolkit to users; importing the version from it is no dependency on what it offers."""
    found = set()
    for module, path in MODULES.items():
        for target in imports_of(module, path):
            if target == "relatel_mcp" and part_of(module) != "__init__":
                continue
            if part_of(module) != part_of(target):
                found.add((part_of(module), part_of(target)))
    return found


def test_every_part_has_a_layer():
    parts = {part_of(module) for module in MODULES} - {"__init__"}
    assert parts == set(LAYER), "a new folder or top-level module needs its place in LAYERS"


def upward(found: set[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, b in found if a != "__init__" and LAYER[a] < LAYER[b])


def test_no_part_imports_from_a_layer_above_it():
    assert upward(edges()) == []


def test_no_import_circles_between_parts_or_modules():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    graph.pop("__init__", None)  # its Toolkit export is imported on first use, for users
    module_graph = {
        module: {t for t in imports(module, path) if t != "relatel_mcp"} for module, path in MODULES.items()
    }
    assert _circles(graph) == [] and _circles(module_graph) == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_an_upward_import_and_a_circle_are_seen():
    """The checks find what they look for: core importing the app is both."""

    def with_upward(module: str, path: Path) -> set[str]:
        found = imports(module, path)
        return found | {"relatel_mcp.app"} if module == "relatel_mcp.core.catalog" else found

    found = edges(with_upward)
    assert upward(found) == [("core", "app")]
    graph: dict[str, set[str]] = {}
    for a, b in found:
        graph.setdefault(a, set()).add(b)
    assert ["app", "core", "app"] in _circles(graph) or ["core", "app", "core"] in _circles(graph)


ENVIRONMENT = re.compile(r"\bos\.environ\b|\bgetenv\(|\benviron\.get\(|from os import .*\benviron\b")


def test_only_the_settings_module_reads_the_environment():
    readers = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in MODULES.values()
        if ENVIRONMENT.search(path.read_text(encoding="utf-8"))
    )
    assert readers == []  # settings.py reads it through pydantic-settings, by each variable's name


def test_every_variable_the_code_names_is_one_the_settings_read():
    named = {
        name
        for path in MODULES.values()
        for name in re.findall(r"\b(?:RELATEL|XDG|OTEL)_[A-Z_]+\b", path.read_text(encoding="utf-8"))
    }
    assert named - set(variables()) == set()
