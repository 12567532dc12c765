"""Mutation testing of the parts that must not break: the gate and its confirmation ladder, the
sealed request states, the approval pages, the pipeline's budget and refund steps, the HTTP
transports' auth and Host checks, and the store's single-use records.

mutmut (configured in pyproject.toml's [tool.mutmut]) changes one thing at a time in the functions
of SCOPE (a comparison flipped, a constant changed, an argument dropped, ...) and runs the tests
that reach that function; a change no test notices "survives". This prints the score per module
and fails if any mutant survives that is not in EQUIVALENT, the mutants that cannot change
behaviour, each with the reason.

    .venv/bin/python scripts/mutation.py            # what CI runs (CI below)
    .venv/bin/python scripts/mutation.py --all      # all of SCOPE
    .venv/bin/python scripts/mutation.py --report   # the scores of the last run, nothing run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")

# module -> the functions mutated there, as mutmut names them (x_name, xǁClassǁmethod).
SCOPE: dict[str, list[str]] = {
    # the gate's checks, in the order it makes them, and the budget given back
    "relatel_mcp.policy.gate": [
        "xǁGateǁ_mode",
        "xǁGateǁkilled",
        "xǁGateǁ_check",
        "xǁGateǁ_check_destinations",
        "xǁGateǁ_check_budget",
        "xǁGateǁ_recheck",
        "xǁGateǁrefund",
        # the confirmation ladder: an answer is a yes, a sealed state or token is redeemed, a page decided
        "xǁGateǁ_answer",
        "xǁGateǁ_accepted",
        "xǁGateǁ_seal",
        "xǁGateǁ_redeem",
        "xǁGateǁ_decision",
    ],
    "relatel_mcp.policy.seal": ["xǁSealerǁseal", "xǁSealerǁopen"],
    "relatel_mcp.policy.approvals": ["xǁApprovalsǁdecide", "xǁApprovalsǁwait"],
    "relatel_mcp.pipeline": ["xǁPipelineǁ_send", "xǁPipelineǁ_refund"],
    "relatel_mcp.front.transports": [
        "xǁBearerAuthǁ__call__",
        "x__bearer",
        "x__public",
        "x__credential_check",
        "xǁPassthroughVerifierǁ__call__",
        "x__transport_security",
    ],
    "relatel_mcp.store.base": [
        "xǁStoreǁspend",
        "xǁStoreǁrefund",
        "xǁStoreǁuse_once",
        "xǁStoreǁdecide",
        "xǁStoreǁtake_secret",
    ],
}

# What CI runs (a few minutes on two cores): the checks a forged, replayed or stolen confirmation
# meets, what counts as a yes, the destinations, and the single-use records and bearer parsing
# under them. `--all` runs the whole SCOPE (half an hour on two cores).
CI: dict[str, list[str]] = {
    "relatel_mcp.policy.gate": [
        "xǁGateǁ_redeem",
        "xǁGateǁ_accepted",
        "xǁGateǁ_check_destinations",
        "xǁGateǁrefund",
    ],
    "relatel_mcp.front.transports": ["x__bearer", "x__public"],
    "relatel_mcp.store.base": ["xǁStoreǁuse_once", "xǁStoreǁtake_secret", "xǁStoreǁdecide"],
}

# Mutants that cannot change what the code does, each with why (a survivor not listed here fails).
EQUIVALENT: dict[str, str] = {
    "relatel_mcp.policy.approvals.xǁApprovalsǁwait__mutmut_1": "expires + now: the store gives no page once "
    "it has expired, so the wait ends at the same look",
    "relatel_mcp.policy.approvals.xǁApprovalsǁwait__mutmut_2": ">= 0 for > 0: differs only at the instant "
    "of expiry, when the store gives no page either way",
    "relatel_mcp.policy.approvals.xǁApprovalsǁwait__mutmut_9": "only how soon the waiter wakes: it looks at "
    "the store every 0.2 s whether or not its event is set",
    "relatel_mcp.policy.approvals.xǁApprovalsǁwait__mutmut_10": "as _9",
    "relatel_mcp.policy.gate.xǁGateǁ_redeem__mutmut_49": "expires <= now for < now: differs only when the "
    "clock reads a token's expiry (a whole second) to the microsecond; a moment later both refuse it",
    "relatel_mcp.policy.gate.xǁGateǁrefund__mutmut_6": "spent = '' for None: an approval is given back at "
    "most once (the one failure that ends its call), so nothing reads it after",
    "relatel_mcp.front.transports.xǁPassthroughVerifierǁ__call____mutmut_5": "the key of the one limiter "
    "over all clients: any constant will do",
    "relatel_mcp.front.transports.xǁPassthroughVerifierǁ__call____mutmut_6": "as _5",
    "relatel_mcp.front.transports.xǁPassthroughVerifierǁ__call____mutmut_7": "as _5",
    "relatel_mcp.front.transports.x__transport_security__mutmut_7": "without a public URL its host is "
    "empty, and an empty name matches no Host header",
    "relatel_mcp.policy.seal.xǁSealerǁopen__mutmut_14": "a payload that is not an object: only this "
    "server seals, and only objects, so none opens without its key",
    "relatel_mcp.store.base.xǁStoreǁuse_once__mutmut_3": "% 65 for % 64: how often expired records are "
    "swept, which only changes the table's size; what a sweep removes expired an hour ago and can never match",
    "relatel_mcp.store.base.xǁStoreǁuse_once__mutmut_4": "!= 0 for == 0: sweeps on 63 of 64 uses instead of "
    "one, as _3",
    "relatel_mcp.store.base.xǁStoreǁuse_once__mutmut_5": "% 64 == 1 for == 0: the count is shared, so its "
    "phase is arbitrary; any 64 uses still include one clearing",
    "relatel_mcp.store.base.xǁStoreǁuse_once__mutmut_14": "clears what expired 3,601 s ago rather than 3,600 "
    "s: a record past its expiry can never match, kept a second longer or not",
}

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def patterns(scope: dict[str, list[str]]) -> list[str]:
    return [f"{module}.{function}__mutmut_*" for module, functions in scope.items() for function in functions]


def in_scope(name: str, scope: dict[str, list[str]] = SCOPE) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns(scope))


def results(scope: dict[str, list[str]]) -> dict[str, str]:
    """Every mutant in `scope` of the last run, with its status."""
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if in_scope(name, scope):
                found[name] = status_by_exit_code[code]
    return found


SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def sql_case_only(name: str) -> bool:
    """A mutant that only changes the case of an SQL statement: SQL's keywords and unquoted names
    ignore case, so it cannot change what the database does."""
    shown = subprocess.run([str(MUTMUT), "show", name], cwd=ROOT, capture_output=True, text=True).stdout
    removed = [line[1:] for line in shown.splitlines() if line.startswith("- ")]
    added = [line[1:] for line in shown.splitlines() if line.startswith("+ ")]
    return (
        bool(removed)
        and len(removed) == len(added)
        and all(
            a != b and a.lower() == b.lower() and SQL.search(a) for a, b in zip(removed, added, strict=True)
        )
    )


def report(found: dict[str, str]) -> list[str]:
    """Print the score per module; return the survivors not known to be equivalent, and the mutants
    listed as equivalent that were killed."""
    print(f"\n{'module':34} {'mutants':>8} {'killed':>7} {'equivalent':>10} {'survived':>9} {'score':>7}")
    unexplained: list[str] = []
    for module in sorted({name.split(".x")[0] for name in found}):
        mine = {n: s for n, s in found.items() if n.startswith(module + ".")}
        counts = Counter("killed" if s in KILLED else s for s in mine.values())
        survivors = [n for n, s in mine.items() if s not in KILLED]
        shown = {n for n in survivors if n in EQUIVALENT or (mine[n] == "survived" and sql_case_only(n))}
        equivalent = len(shown)
        unexplained += [n for n in survivors if n not in shown]
        judged = len(mine) - equivalent
        score = counts["killed"] / judged if judged else 1.0
        print(f"{module:34} {len(mine):8} {counts['killed']:7} {equivalent:10} "
              f"{len(survivors) - equivalent:9} {score:7.1%}")  # fmt: skip
    for name in sorted(unexplained):
        print(f"{found[name]}: {name}   (mutmut show {name})")
    # An equivalent mutant changes nothing, so its tests pass: killed, either the list is stale (the
    # code moved) or a test failed for a reason of its own, which would count other mutants killed too.
    stale = sorted(n for n in EQUIVALENT if n in found and found[n] in KILLED)
    for name in stale:
        print(f"listed as equivalent but {found[name]}: {name}   (mutmut show {name})")
    return unexplained + stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print the last run's scores; run nothing")
    parser.add_argument("--all", action="store_true", help="the whole SCOPE, not only what CI runs")
    args = parser.parse_args()
    scope = SCOPE if args.all else CI
    if not args.report:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)  # results of other code must not count
        started = time.monotonic()
        env = {**os.environ, "RELATEL_MCP_MUTATION": "1"}
        command = [str(MUTMUT), "run", "--max-children", str(os.cpu_count() or 2), *patterns(scope)]
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        print(f"mutmut ran in {time.monotonic() - started:.0f} s (exit {run.returncode})")
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
            return run.returncode
    found = results(scope)
    if not found:
        print("no mutants in scope: run it without --report first")
        return 1
    unexplained = report(found)
    unchecked = [n for n, s in found.items() if s == "not checked"]
    return 1 if unexplained or unchecked else 0


if __name__ == "__main__":
    sys.exit(main())
