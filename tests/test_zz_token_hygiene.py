"""Runs last (by name): no credential in anything the suite's traffic produced, and the scan saw
enough of it to mean something. (conftest.py fails any run, a part of the suite too, whose scan
found one; this test is the whole suite's count.)"""

from __future__ import annotations

from .hygiene import Hygiene
from .services import missing


def test_no_token_in_any_result_error_log_line_or_audit_record(hygiene: Hygiene):
    if hygiene.results < 1000:
        missing(
            "the whole suite", f"is needed to count on the scan: only {hygiene.results} results were seen"
        )
    hygiene.scan_audit()
    print(
        f"\ntoken hygiene: {hygiene.results} results, {hygiene.log_lines} log lines, "
        f"{hygiene.audit_records} audit records scanned; {len(hygiene.hits)} token appearances"
    )
    assert hygiene.audit_records > 100 and hygiene.log_lines > 1000
    assert hygiene.hits == []
