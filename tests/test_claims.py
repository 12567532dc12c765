"""docs/claims.md names, in the docs' own words, every promise of the safety, remote and scale-out
docs and the tests that prove it. These tests keep it true and complete: each quote is still what
its section says, each test it names exists, and no paragraph, list item or table row of those
docs is left without a row (docs/claims.md says how, at its top)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "docs" / "claims.md"
# The docs whose every block needs a row: a set of sections (by anchor), or None for every one.
COVERED: dict[str, set[str] | None] = {
    "README.md": {"safety-in-brief"},
    "docs/safety.md": None,
    "docs/remote.md": None,
    "docs/scale-out.md": None,
}
PROVEN, UNPROVEN, NOT_PROMISES = "Promises and their tests", "Promises no test here proves", "Not promises"
FENCE = re.compile(r"^( *)```([\w-]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)
SEPARATOR = re.compile(r"\|[\s:|-]+\|")


@dataclass(frozen=True)
class Row:
    table: str  # the heading of the table it is in
    quote: str  # the docs' words, white space folded
    doc: str  # the doc it quotes, relative to the repository
    section: str  # the anchor of the section it quotes
    tests: tuple[tuple[str, str], ...]  # (file, test function)

    def __str__(self) -> str:
        return f"{self.doc}#{self.section}: {self.quote!r}"


def folded(text: str) -> str:
    return " ".join(text.split())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (as tests/test_docs.py has it)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def rows() -> tuple[Row, ...]:
    found, table = [], ""
    for line in CLAIMS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            table = line[3:].strip()
        if not line.startswith('| "'):
            continue  # not a row of one of the tables (a header, a separator, prose)
        quote, made_in, rest = (cell.strip() for cell in line.strip().strip("|").split("|"))
        link = re.fullmatch(r"\[[^\]]+\]\(([^)#]+)#([^)]+)\)", made_in)
        assert quote.endswith('"') and link, (
            f'docs/claims.md: a row that is not `"quote" | [doc#section](...)`: {line}'
        )
        doc = (CLAIMS.parent / link.group(1)).resolve().relative_to(ROOT).as_posix()
        tests = tuple(re.findall(r"`(tests/\w+\.py)::(\w+)`", rest))
        found.append(Row(table, folded(quote[1:-1]), doc, link.group(2), tests))
    return tuple(found)


@cache
def sections(doc: str) -> dict[str, str]:
    """Each section of a doc, by anchor: its text up to the next heading, without code blocks."""
    parts = re.split(r"^(#{1,6} .+)$", FENCE.sub("", (ROOT / doc).read_text(encoding="utf-8")), flags=re.M)
    return {slug(parts[i].lstrip("#")): parts[i + 1] for i in range(1, len(parts), 2)}


def blocks(text: str) -> list[str]:
    """A section's paragraphs, list items and table rows (but a table's header), white space folded."""
    found: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        current: list[str] = []
        for i, line in enumerate(lines):
            if line.startswith("|"):
                header = i + 1 < len(lines) and SEPARATOR.fullmatch(lines[i + 1])
                if not (header or SEPARATOR.fullmatch(line)):
                    found.append(folded(line))
                continue
            if re.match(r"(- |\d+\. )", line) and current:  # a list item begins
                found.append(folded(" ".join(current)))
                current = []
            current.append(line)
        if current:
            found.append(folded(" ".join(current)))
    return found


def test_the_page_has_its_three_tables():
    counts = {table: sum(r.table == table for r in rows()) for table in (PROVEN, UNPROVEN, NOT_PROMISES)}
    assert counts[PROVEN] >= 100 and all(counts.values()), counts
    assert {r.table for r in rows()} <= set(counts), "a row under a heading that is none of the three tables"


def test_each_row_quotes_its_section_as_it_is_now():
    stale = [
        str(row)
        for row in rows()
        if row.section not in sections(row.doc) or row.quote not in folded(sections(row.doc)[row.section])
    ]
    assert not stale, "docs/claims.md quotes words its section no longer has:\n" + "\n".join(stale)


def test_every_block_of_the_covered_docs_has_a_row():
    missing = []
    for doc, covered in COVERED.items():
        for section, text in sections(doc).items():
            if covered is not None and section not in covered:
                continue
            quotes = [r.quote for r in rows() if (r.doc, r.section) == (doc, section)]
            missing += [f"{doc}#{section}: {block[:100]}…" for block in blocks(text) if not any(q in block for q in quotes)]  # fmt: skip
    assert not missing, "blocks docs/claims.md has no row for (a promise, one no test proves, or none):\n" + "\n".join(missing)  # fmt: skip


def test_every_promise_names_tests_that_exist():
    wrong = []
    for row in rows():
        if row.table != PROVEN:
            assert not row.tests, f"{row}: only a proven promise names tests"
            continue
        if not row.tests:
            wrong.append(f"{row}: names no test")
        for file, name in row.tests:
            if name not in defined_tests(file):
                wrong.append(f"{row}: {file}::{name} is no test there")
    assert not wrong, "\n".join(wrong)


@cache
def defined_tests(file: str) -> frozenset[str]:
    """The test functions a test file defines at its top level (parametrized ones by name)."""
    path = ROOT / file
    if not path.exists():
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    )
