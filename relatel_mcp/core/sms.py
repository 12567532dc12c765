"""SMS segment counting, shared by the sandbox outbox and the MCP server's cost previews.

Why: an SMS is billed per segment, and the segment size depends on the encoding. Text that fits the
GSM 03.38 alphabet is sent as GSM-7 (160 septets, or 153 per part once a concatenation header is
needed); a single character outside it (an emoji, a curly quote) switches the whole message to UCS-2
(70 UTF-16 code units, 67 per part). Characters from the GSM-7 extension table take an escape plus
the character, so they cost 2 units. Showing the segment count before sending lets a caller see
that one emoji can double or triple the price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    """How a text is encoded and how many billable segments it needs."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def _gsm7_units(text: str) -> int | None:
    """Septets needed in GSM-7, or None when a character is outside the GSM alphabet."""
    units = 0
    for char in text:
        if char in GSM7_BASIC:
            units += 1
        elif char in GSM7_EXTENSION:
            units += 2
        else:
            return None
    return units


def _segments(units: int, single: int, part: int) -> int:
    if units == 0:
        return 0
    return 1 if units <= single else -(-units // part)


def sms_segments(text: str) -> SmsInfo:
    """Return the encoding, length in encoding units and segment count of an SMS body."""
    units = _gsm7_units(text)
    if units is not None:
        return SmsInfo("GSM-7", units, _segments(units, GSM7_SINGLE, GSM7_PART))
    units = len(text.encode("utf-16-le")) // 2
    return SmsInfo("UCS-2", units, _segments(units, UCS2_SINGLE, UCS2_PART))
