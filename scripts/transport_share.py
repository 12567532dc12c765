"""How many tests drive an MCP client over a real transport (stdio, streamable HTTP, SSE) rather
than only in process: the suite, or the pytest arguments given, run with the plugin
tests/transport_share.py, which prints the share at the end.

    .venv/bin/python scripts/transport_share.py                       # the whole suite
    .venv/bin/python scripts/transport_share.py tests/test_gate.py --transport-share=share.json
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    pytest = [sys.executable, "-m", "pytest", "-p", "tests.transport_share", *sys.argv[1:]]
    sys.exit(subprocess.call(pytest, cwd=ROOT))
