"""No test skips in silence where CI runs: every skip goes through services.missing, which fails
instead where RELATEL_MCP_REQUIRE_SERVICES=1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .services import missing

TESTS = Path(__file__).parent
SKIPS = re.compile(r"\bskip\(|\bskipif\b|\bimportorskip\b|\bmark\.skip\b|\bxfail\b")


def test_every_skip_goes_through_the_switch():
    bypassing = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in ("services.py", Path(__file__).name)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SKIPS.search(line)
    ]
    assert bypassing == [], "skip through services.missing instead:\n" + "\n".join(bypassing)


@pytest.mark.parametrize("required", ["1", None])
def test_missing_skips_or_fails_as_the_switch_says(monkeypatch, required):
    if required is None:
        monkeypatch.delenv("RELATEL_MCP_REQUIRE_SERVICES", raising=False)
    else:
        monkeypatch.setenv("RELATEL_MCP_REQUIRE_SERVICES", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="nginx"):
        missing("nginx")
