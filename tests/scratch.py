"""Scratch directories for the servers the tests start: all under one root per test run, which
conftest.py removes when the run ends (after the token scan has read the audits kept in them), so
that no run leaves directories behind in /tmp."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class Scratch:
    def __init__(self) -> None:
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        """This run's root, made at the first use."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="relatel-mcp-test-"))
        return self._root

    def new(self, prefix: str) -> Path:
        """A new empty directory of this run's."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))

    def remove(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


SCRATCH = Scratch()
