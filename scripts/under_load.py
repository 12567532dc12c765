"""Run the test suite several times in a row with busy processes beside it, to show that it does
not depend on the machine being idle (no timing in assertions, no sleeps standing for events).

    .venv/bin/python scripts/under_load.py                  # 3 runs beside 6 busy processes
    .venv/bin/python scripts/under_load.py --runs 1 --busy 8 -- -m "not slow"

Each busy process spins on a core at normal priority for as long as the runs last; all are stopped
by their pids at the end, whatever happened. Prints each run's exit status and time, and exits
non-zero unless every run passed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPIN = "while True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="suite runs in a row (default 3)")
    parser.add_argument("--busy", type=int, default=6, help="busy processes beside them (default 6)")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    outcomes: list[tuple[int, float]] = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pytest", *args.pytest_args], cwd=ROOT)
            outcomes.append((done.returncode, time.monotonic() - started))
            print(f"under load: run {run} of {args.runs}: exit {done.returncode} in {outcomes[-1][1]:.0f} s "
                  f"beside {args.busy} busy processes", flush=True)  # fmt: skip
            if done.returncode != 0:
                break
    finally:
        for process in busy:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(10)
    passed = sum(code == 0 for code, _ in outcomes)
    print(f"under load: {passed} of {args.runs} runs passed; "
          f"times {', '.join(f'{seconds:.0f} s' for _, seconds in outcomes)}")  # fmt: skip
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
