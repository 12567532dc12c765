"""Regenerate every generated file from its source, in order (after changing tools.yaml, a model,
a description or the contract):

    relatel_mcp/core/contract.json   from contract/openapi.yaml
    relatel_mcp/core/tools.json      from relatel_mcp/core/tools.yaml (what the server reads)
    relatel_mcp/core/prompts.json    from relatel_mcp/core/prompts.yaml (checked against the catalogue)
    docs/tools.md's tool table  from the catalogue (between <!-- tools:start/end -->)
    tests/toolsnaps/*.json      each tool as an MCP client receives it
    tests/toolsnaps/prompts/*.json  each prompt as an MCP client receives it

The tests fail while any of them is stale (tests/test_catalog.py, tests/test_prompts.py,
tests/test_toolsnaps.py), so CI does too. `--check` changes nothing and exits 1 naming the stale files.
Run: .venv/bin/python scripts/regenerate.py [--check]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    [sys.executable, "-m", "relatel_mcp.core.contract", "contract/openapi.yaml"],
    [sys.executable, "-m", "relatel_mcp.core.catalog"],
    [sys.executable, "-m", "relatel_mcp.core.prompts"],
    [sys.executable, __file__, "--tools-table"],
    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_toolsnaps.py"],
]
TABLE = "docs/tools.md"  # the page whose tool table is generated
TABLE_START, TABLE_END = "<!-- tools:start -->\n", "\n<!-- tools:end -->"
GENERATED = [
    "relatel_mcp/core/contract.json",
    "relatel_mcp/core/tools.json",
    "relatel_mcp/core/prompts.json",
    TABLE,
    "tests/toolsnaps",
    "tests/toolsnaps/prompts",
]


def snapshot() -> dict[str, bytes]:
    files = {}
    for name in GENERATED:
        path = ROOT / name
        for each in sorted(path.glob("*.json")) if path.is_dir() else [path] if path.exists() else []:
            files[str(each.relative_to(ROOT))] = each.read_bytes()
    return files


def write_tools_table() -> None:
    """docs/tools.md's tool table, from the catalogue that tools.json now holds."""
    from relatel_mcp.cli import tools_markdown

    page = ROOT / TABLE
    head, rest = page.read_text(encoding="utf-8").split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    page.write_text(head + TABLE_START + "\n".join(tools_markdown()) + TABLE_END + tail, encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv == ["--tools-table"]:
        write_tools_table()
        return 0
    check = argv == ["--check"]
    before = snapshot()
    for step in STEPS:  # each in a process of its own: the catalogue is read once per process
        subprocess.run(step, cwd=ROOT, check=True, env={**os.environ, "UPDATE_TOOLSNAPS": "1"},
                       stdout=subprocess.DEVNULL)  # fmt: skip
    after = snapshot()
    stale = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if check and stale:  # put back what was there
        for name in after.keys() - before.keys():
            (ROOT / name).unlink()
        for name, data in before.items():
            (ROOT / name).write_bytes(data)
    print("\n".join(f"{'stale' if check else 'regenerated'}: {name}" for name in stale) or "all up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
