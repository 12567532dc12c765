"""Runs last (by name): no credential in anything the suite's traffic produced."""

from __future__ import annotations

import pytest

from .hygiene import Hygiene


def test_no_token_in_any_result_error_log_line_or_audit_record(hygiene: Hygiene):
    if hygiene.results < 1000:
        pytest.skip(f"only {hygiene.results} results were seen: run it with the whole suite")
    hygiene.scan_audit()
    print(
        f"\ntoken hygiene: {hygiene.results} results, {hygiene.log_lines} log lines, "
        f"{hygiene.audit_records} audit records scanned; {len(hygiene.hits)} token appearances"
    )
    assert hygiene.audit_records > 100 and hygiene.log_lines > 1000
    assert hygiene.hits == []
