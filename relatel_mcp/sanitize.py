"""Text that comes from the API (names, comments, transcripts, SMS bodies) is untrusted data.

Control characters and invisible or bidirectional formatting characters can hide or reorder
what a human or a model reads (a "Trojan source" in a contact note); they are removed before the
text reaches a confirmation question or a result.
"""

from __future__ import annotations

import unicodedata

_KEEP = {"\n", "\t"}


def clean_text(text: str) -> str:
    return "".join(
        ch for ch in text if ch in _KEEP or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )
