"""A fast path for the common case: a canonical transaction message straight to its COPY line.

The pydantic contract (domain/models.py) stays the one definition of validity. This path accepts
only messages that are plainly valid under it (exact JSON types, no surrounding whitespace, ASCII
digits, nothing COPY would escape, values well inside the limits) and returns the COPY text of
exactly the row the contract would give; for anything else it returns None and the caller asks
pydantic, which accepts or rejects with its reason. No value object is built: that is where the
time goes, and the text fields are checked all at once by one regular expression over the line.
tests/unit/test_decide_fastparse.py checks the two side by side.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import orjson

from streamguard.domain.event_time import EventTimeBounds
from streamguard.domain.models import Channel, from_epoch_ms
from streamguard.store.ledger import TX_COLUMNS, LedgerRow

#: 12 integer digits + 2 decimals stays inside numeric(14, 2) without asking how pydantic counts.
_MAX_AMOUNT = 10**12
#: datetime's year 9999.
_MAX_TS_MS = 253_402_300_800_000

#: The wire's fields in COPY order, then the event time.
_FIELDS = itemgetter(*TX_COLUMNS[:16], "ts_ms")


def _text(max_len: int, min_len: int) -> str:
    """A value of min_len..max_len characters without a tab or whitespace at either end (the
    contract strips whitespace, so such a value would not be stored as sent)."""
    inner = rf"\S(?:[^\t]{{0,{max_len - 2}}}\S)?"
    return inner if min_len else f"(?:{inner})?"


_NUMBER = r"[^\t]+"  # formatted here from a checked number
#: The COPY line's first 17 columns, each as the contract allows it: one match checks them all.
_LINE = re.compile(
    "\t".join(
        (
            _text(64, 1),  # transaction_id
            _text(64, 1),  # account_id
            _text(64, 1),  # card_token
            "[0-9]{4}",  # card_last4
            _NUMBER,  # amount
            "[A-Z]{3}",  # currency
            "(?:" + "|".join(channel.value for channel in Channel) + ")",
            _text(64, 1),  # merchant_id
            _text(200, 0),  # merchant_name
            "[0-9]{4}",  # merchant_mcc
            _text(100, 0),  # city
            "[A-Z]{2}",  # state
            _NUMBER,  # lat
            _NUMBER,  # lon
            _text(64, 0),  # device_id
            _text(45, 0),  # ip_address
            _NUMBER,  # event_time
        )
    )
)


def _number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _amount(value: Any) -> str | None:
    """The amount as COPY text, if it plainly has at most two decimals and fits numeric(14, 2)."""
    if not _number(value) or not 0 <= value < _MAX_AMOUNT:
        return None
    text = repr(value)
    if "e" in text or "E" in text or len(text.partition(".")[2]) > 2:
        return None
    return text


_SECONDS: dict[int, str] = {}


def _timestamp(ms: int) -> str:
    """COPY text of a UTC instant in epoch ms; the second's prefix is cached (events cluster)."""
    second, milli = divmod(ms, 1000)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) > 10_000:
            _SECONDS.clear()
        prefix = _SECONDS[second] = from_epoch_ms(second * 1000).strftime("%Y-%m-%d %H:%M:%S")
    return f"{prefix}.{milli:03d}+00"


_DEFAULT_BOUNDS = EventTimeBounds()


def ledger_row(
    payload: bytes, append_ms: int | None, bounds: EventTimeBounds = _DEFAULT_BOUNDS
) -> LedgerRow | None:
    """The ledger row (a COPY text line) of a plainly valid transaction, or None: ask pydantic.

    An event time outside `bounds` is left to the caller too, which dead-letters it."""
    try:
        d = orjson.loads(payload)
        values = _FIELDS(d)  # KeyError when one is missing, TypeError when d is not an object
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    (tx_id, account, token, last4, amount, currency, channel, merchant, name, mcc, city, state,
     lat, lon, device, ip, ts_ms) = values  # fmt: skip
    if (
        not (_number(lat) and -90 <= lat <= 90)
        or not (_number(lon) and -180 <= lon <= 180)
        or not (type(ts_ms) is int and 0 < ts_ms < _MAX_TS_MS)
        or type(d.get("schema_version", 1)) is not int
        or (append_ms is not None and not 0 < append_ms < _MAX_TS_MS)
        or not bounds.accepts(ts_ms, append_ms)
    ):
        return None
    amount_text = _amount(amount)
    if amount_text is None:
        return None
    try:  # join refuses anything but text, so every field below is a str
        line = "\t".join(
            (tx_id, account, token, last4, amount_text, currency, channel, merchant, name, mcc,
             city, state, repr(float(lat)), repr(float(lon)), device, ip, _timestamp(ts_ms))
        )  # fmt: skip
    except TypeError:
        return None
    # COPY text gives meaning to backslash, newline and carriage return; leave such values to
    # psycopg's escaping on the contract's path.
    if _LINE.fullmatch(line) is None or "\\" in line or "\n" in line or "\r" in line:
        return None
    line += f"\t{_timestamp(append_ms)}\n" if append_ms else "\t\\N\n"
    return LedgerRow(tx_id, account, merchant, device, append_ms, line)
