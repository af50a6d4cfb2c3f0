"""Card numbers never reach storage in clear: mask anything that looks like a PAN in raw input.

Valid transactions carry only a token and the last four digits. A malformed message, though, is
kept as it came (dead letters), so it is masked first: every run of 14-19 digits (epoch millis
have 13), optionally grouped by spaces or dashes, that passes the Luhn check keeps only its last
four digits.
"""

from __future__ import annotations

import re

_CANDIDATE = re.compile(rb"(?<!\d)\d(?:[ -]?\d){13,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask(match: re.Match[bytes]) -> bytes:
    digits = re.sub(rb"\D", b"", match.group(0)).decode()
    if not luhn_valid(digits):
        return match.group(0)
    return b"*" * (len(digits) - 4) + digits[-4:].encode()


def redact_card_numbers(payload: bytes | None) -> bytes | None:
    """The payload with every Luhn-valid card number masked to its last four digits."""
    if not payload:
        return payload
    return _CANDIDATE.sub(_mask, payload)
