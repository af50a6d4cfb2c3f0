"""A fast path for the common case: a canonical transaction message straight to its ledger row.

The pydantic contract (domain/models.py) stays the one definition of validity. This path accepts
only messages that are plainly valid under it (exact JSON types, no surrounding whitespace, ASCII
digits, values well inside the limits) and returns exactly the row the contract would give; for
anything else it returns None and the caller asks pydantic, which accepts or rejects with its
reason. tests/unit/test_decide_fastparse.py checks the two side by side.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from streamguard.domain.models import Channel, from_epoch_ms

_CHANNELS = frozenset(channel.value for channel in Channel)
_CENTS = Decimal("0.01")
#: 12 integer digits + 2 decimals stays inside numeric(14, 2) without asking how pydantic counts.
_MAX_AMOUNT = 10**12
_MAX_INT = 2**62
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


def _amount(value: Any) -> Decimal | None:
    if not _number(value) or not 0 <= value < _MAX_AMOUNT:
        return None
    exact = Decimal(value) if type(value) is int else Decimal(repr(value))
    exponent = exact.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2:
        return None
    return exact.quantize(_CENTS)


def transaction_row(payload: bytes, append_ms: int | None) -> tuple | None:
    """The ledger row of a plainly valid transaction message, or None to ask pydantic."""
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
    lat, lon, ts_ms, version = get("lat"), get("lon"), get("ts_ms"), get("schema_version", 1)
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
        or not (type(ts_ms) is int and 0 < ts_ms < _MAX_INT)
        or type(version) is not int
    ):
        return None
    return (
        d["transaction_id"],
        d["account_id"],
        d["card_token"],
        d["card_last4"],
        amount,
        currency,
        d["channel"],
        d["merchant_id"],
        d["merchant_name"],
        d["merchant_mcc"],
        d["city"],
        d["state"],
        float(lat),
        float(lon),
        d["device_id"],
        d["ip_address"],
        from_epoch_ms(ts_ms),
        from_epoch_ms(append_ms) if append_ms else None,
    )
