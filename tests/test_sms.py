"""SMS segment counting: GSM-7 vs UCS-2, extension characters, multipart sizes."""

from __future__ import annotations

import pytest

from relatel_mcp.core.sms import SmsInfo, sms_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsInfo("GSM-7", 0, 0)),
        ("Hej", SmsInfo("GSM-7", 3, 1)),
        ("a" * 160, SmsInfo("GSM-7", 160, 1)),
        ("a" * 161, SmsInfo("GSM-7", 161, 2)),
        ("a" * 306, SmsInfo("GSM-7", 306, 2)),
        ("a" * 307, SmsInfo("GSM-7", 307, 3)),
        ("Æble, øl og å — ", SmsInfo("UCS-2", 16, 1)),  # the em dash is not GSM
        ("Æble, øl og å", SmsInfo("GSM-7", 13, 1)),
        ("Pris: 100€", SmsInfo("GSM-7", 11, 1)),
        ("{[~]}^\\|€\f", SmsInfo("GSM-7", 20, 1)),
        ("€" * 80, SmsInfo("GSM-7", 160, 1)),
        ("€" * 81, SmsInfo("GSM-7", 162, 2)),
        ("a" * 70 + "☕", SmsInfo("UCS-2", 71, 2)),
        ("ж" * 70, SmsInfo("UCS-2", 70, 1)),
        ("ж" * 71, SmsInfo("UCS-2", 71, 2)),
        ("ж" * 134, SmsInfo("UCS-2", 134, 2)),
        ("ж" * 135, SmsInfo("UCS-2", 135, 3)),
        ("👍", SmsInfo("UCS-2", 2, 1)),
        ("👍" * 35, SmsInfo("UCS-2", 70, 1)),
        ("👍" * 36, SmsInfo("UCS-2", 72, 2)),
    ],
)
def test_segments(text: str, expected: SmsInfo) -> None:
    assert sms_segments(text) == expected


def test_info_is_frozen() -> None:
    info = sms_segments("Hej")
    with pytest.raises(AttributeError):
        info.segments = 2  # type: ignore[misc]
