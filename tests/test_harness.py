"""What mutation testing needs of the test helpers. mutmut runs each mutant's tests in a fork of a
process that has already run tests (scripts/mutation.py): a helper that keeps a thread from one
test to the next must work again in the child, or the child waits on a thread it does not have,
its test fails when it gives up, and the mutant counts as killed by no check."""

from __future__ import annotations

import os
import signal
import time

import httpx2

from .support import hosted, settings_for


def test_a_forked_child_hosts_servers_of_its_own(sandbox):
    with hosted(settings_for(sandbox.url)):  # the kept host and its thread, in this process
        pass
    pid = os.fork()
    if pid == 0:  # the child, as a mutant's worker: serve again and answer, then leave at once
        code = 1
        try:
            with hosted(settings_for(sandbox.url)) as url:
                code = 0 if httpx2.get(f"{url}/healthz", timeout=5).status_code == 200 else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the child's exit, with a deadline
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0, "the forked child could not serve"
