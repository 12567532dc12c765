"""Phone numbers: what people type, the API's form (country code and digits: 4571999999), and how
people read them (+45 71 99 99 99).

libphonenumber (`phonenumberslite`) is imported on the first number, not at start-up: many runs
never see one (listing tools, reading the account), and its import and metadata are the largest
part of what this server would otherwise load beyond the MCP SDK.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import phonenumbers

EXAMPLE = "+45 71 99 99 99"


def normalize(value: object, *, strict: bool = False) -> str:
    """`+45 71 99 99 99`, `0045 71999999`, `4571999999` or eight Danish digits, to `4571999999`.

    Raises ValueError for anything that is not a plausible number: a known country code and a
    length that country's numbers can have. `strict` also needs a number in a range that is
    allocated, for what is dialled (a contact may hold a number libphonenumber does not know yet).
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a phone number given as a string, e.g. '{EXAMPLE}'")
    text = re.sub(r"[\s\-./()]", "", value)
    if not re.fullmatch(r"\+?\d{1,17}", text):
        raise ValueError(
            f"{value!r} is not a phone number; give digits with the country code, e.g. {EXAMPLE}"
        )
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        # Eight digits are a Danish number without its country code; anything longer already
        # starts with one (the API's own form).
        text = ("+45" if len(text) == 8 else "+") + text
    import phonenumbers

    number = _parse(text)
    check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    if number is None or not check(number):
        raise ValueError(
            f"{value!r} is not a valid phone number; give it with its country code, e.g. {EXAMPLE}"
        )
    # E.164 keeps what the bare national number loses: Italy's leading zero (+39 06 …).
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")


def display(number: str | None, *, national: bool = False) -> str | None:
    """A number in the API's form as people write it (+45 71 99 99 99); None when it is no number."""
    import phonenumbers

    parsed = _parse("+" + number) if number and number.isascii() and number.isdigit() else None
    if parsed is None:
        return None
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


def is_premium_rate(number: str) -> bool:
    import phonenumbers

    parsed = _parse("+" + number)
    return (
        parsed is not None and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.PREMIUM_RATE
    )


def _parse(text: str) -> phonenumbers.PhoneNumber | None:
    import phonenumbers

    try:
        return phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
