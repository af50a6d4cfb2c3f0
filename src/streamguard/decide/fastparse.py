"""A fast path for the common case: a canonical transaction message straight to its COPY line.

The pydantic contract (domain/models.py) stays the one definition of validity. This path accepts
only messages that are plainly valid under it (exact JSON types, no surrounding whitespace, ASCII
digits, nothing COPY would escape, values well inside the limits) and returns the COPY text of
exactly the row the contract would give; for anything else it returns None and the caller asks
pydantic, which accepts or rejects with its reason. No value object is built: that is where the
time goes. tests/unit/test_decide_fastparse.py checks the two side by side.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamguard.domain.models import Channel, from_epoch_ms
from streamguard.store.ledger import LedgerRow

_CHANNELS = frozenset(channel.value for channel in Channel)
#: 12 integer digits + 2 decimals stays inside numeric(14, 2) without asking how pydantic counts.
_MAX_AMOUNT = 10**12
#: datetime's year 9999.
_MAX_TS_MS = 253_402_300_800_000
_IDS = ("transaction_id", "account_id", "card_token", "merchant_id")


def _text(value: Any, max_len: int, min_len: int = 0) -> bool:
    return type(value) is str and min_len <= len(value) <= max_len and value == value.strip()


def _digits(value: Any, length: int) -> bool:
    return type(value) is str and len(value) == length and value.isascii() and value.isdigit()


def _upper(value: Any, length: int) -> bool:
    return (
        type(value) is str
        and len(value) == length
        and value.isascii()
        and value.isalpha()
        and value.isupper()
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


def ledger_row(payload: bytes, append_ms: int | None) -> LedgerRow | None:
    """The ledger row (a COPY text line) of a plainly valid transaction, or None: ask pydantic."""
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict:
        return None
    get = d.get
    for name in _IDS:
        if not _text(get(name), 64, 1):
            return None
    amount = _amount(get("amount"))
    currency, channel = get("currency", "BRL"), get("channel")
    lat: Any = get("lat")
    lon: Any = get("lon")
    ts_ms, version = get("ts_ms"), get("schema_version", 1)
    if (
        amount is None
        or not _digits(get("card_last4"), 4)
        or not _upper(currency, 3)
        or type(channel) is not str
        or channel not in _CHANNELS
        or not _text(get("merchant_name"), 200)
        or not _digits(get("merchant_mcc"), 4)
        or not _text(get("city"), 100)
        or not _upper(get("state"), 2)
        or not (_number(lat) and -90 <= lat <= 90)
        or not (_number(lon) and -180 <= lon <= 180)
        or not _text(get("device_id"), 64)
        or not _text(get("ip_address"), 45)
        or not (type(ts_ms) is int and 0 < ts_ms < _MAX_TS_MS)
        or type(version) is not int
        or (append_ms is not None and not 0 < append_ms < _MAX_TS_MS)
    ):
        return None
    line = "\t".join(
        (
            d["transaction_id"],
            d["account_id"],
            d["card_token"],
            d["card_last4"],
            amount,
            currency,
            channel,
            d["merchant_id"],
            d["merchant_name"],
            d["merchant_mcc"],
            d["city"],
            d["state"],
            repr(float(lat)),
            repr(float(lon)),
            d["device_id"],
            d["ip_address"],
            _timestamp(ts_ms),
        )
    )
    # COPY text gives meaning to backslash, tab, newline and carriage return; leave such values
    # to psycopg's escaping on the contract's path.
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != 16:
        return None
    line += f"\t{_timestamp(append_ms)}\n" if append_ms else "\t\\N\n"
    return LedgerRow(
        d["transaction_id"],
        d["account_id"],
        d["merchant_id"],
        d["device_id"],
        append_ms,
        line,
    )
