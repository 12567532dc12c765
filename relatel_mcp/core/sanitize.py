"""Text that comes from the API (names, comments, transcripts, SMS bodies) or from stored
arguments is untrusted data: it must not hide or reorder what a human or a model reads.

`clean_text` removes, by Unicode property rather than by a list of known tricks:
- the categories Cc (controls, except newline and tab), Cf (format: bidi overrides, zero-width
  joiners, tag characters), Co (private use), Cs (surrogates), Cn (unassigned), Zl and Zp (the
  line and paragraph separators U+2028/2029);
- every Default_Ignorable_Code_Point of Unicode's DerivedCoreProperties.txt (variation
  selectors, the Hangul fillers, the combining grapheme joiner, ...), which render as nothing
  whatever their category;
- blank look-alikes that render as empty space but are letters or symbols (U+2800 braille blank).

`quoted` shows one value inside the server's own sentences: on one line, in «», capped, so that
no value can start a line of its own or pass for the server's words. `verbatim` does the same for
a value that is sent as it is shown (an SMS a human approves): whole, never cut, its white space
as it is.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

_KEEP = {"\n", "\t"}
_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
# Default_Ignorable_Code_Point (Unicode 15.1, DerivedCoreProperties.txt), as ranges.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
_BLANK = frozenset({0x2800})
QUOTE_OPEN, QUOTE_CLOSE = "«", "»"


@lru_cache(maxsize=4096)  # bounded: the characters come from untrusted text
def hidden(ch: str) -> bool:
    """Would this character be invisible, or change how the text around it reads?"""
    if ch in _KEEP:
        return False
    point = ord(ch)
    return (
        unicodedata.category(ch) in _CATEGORIES
        or point in _BLANK
        or any(low <= point <= high for low, high in _IGNORABLE)
    )


def clean_text(text: str) -> str:
    if text.isascii() and text.isprintable():  # the common case, fast
        return text
    return "".join(ch for ch in text if not hidden(ch))


def clean_data(value: Any) -> Any:
    """`clean_text` on every string of JSON-like data."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_data(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_data(v) for k, v in value.items()}
    return value


def quoted(value: object, limit: int = 120) -> str:
    """`value` as «…» on one line: hidden characters dropped, line breaks shown as ⏎, white space
    folded, quote marks inside replaced, at most `limit` characters."""
    text = "".join("" if hidden(ch) else ch for ch in str(value))
    text = " ".join(_one_line(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{QUOTE_OPEN}{text}{QUOTE_CLOSE}"


def verbatim(value: object) -> str:
    """`value` as «…» on one line and whole: line breaks shown as ⏎, every other character as it is
    (runs of spaces too), except that a hidden one is shown as its code point (⟨U+202E⟩) and quote
    marks inside are replaced. For text that is sent as shown: nothing of it may be left out."""
    text = "".join(f"⟨U+{ord(ch):04X}⟩" if hidden(ch) else ch for ch in str(value))
    return f"{QUOTE_OPEN}{_one_line(text)}{QUOTE_CLOSE}"


def _one_line(text: str) -> str:
    return text.translate({ord("\n"): "⏎", ord(QUOTE_OPEN): "‹", ord(QUOTE_CLOSE): "›"})
