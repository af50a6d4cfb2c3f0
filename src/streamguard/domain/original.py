"""The original system's message shape, read as a StreamGuard transaction.

The original's producers send `{transaction_id, account_id, amount, timestamp, merchant,
category}`: `timestamp` is ISO-8601 (naive means UTC, an explicit offset is honoured),
`merchant` the merchant's name, `category` a word. Both halves of the pipeline read it: the
model (domain/models.py) through `normalise`, the rules job through the same grammar in its
`PARSE_EVENT_MS` function and `category_mcc_sql` (rules/engine.py). A field that the canonical
shape also carries (`ts_ms`, `merchant_name`, `merchant_mcc`) wins over the original's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

#: The timestamps both halves accept: date, `T` or a space, time to the second, an optional
#: fraction (read to the millisecond, the rest dropped) and an optional `Z` or +HH:MM offset.
#: rules/functions/.../ParseEventMs.java holds the same pattern; tests/integration
#: test_rules_engine.py sends the same strings through both.
ISO_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)

#: The original's categories (and the generator's) -> ISO 18245 merchant category codes.
#: Keys are lower case with `_` for spaces and dashes; an unknown category stores no MCC.
CATEGORY_MCC: dict[str, str] = {
    "grocery": "5411",
    "groceries": "5411",
    "supermarket": "5411",
    "restaurant": "5812",
    "food": "5812",
    "fast_food": "5814",
    "gas": "5541",
    "gas_station": "5541",
    "fuel": "5541",
    "pharmacy": "5912",
    "health": "5912",
    "department_store": "5311",
    "retail": "5311",
    "shopping": "5311",
    "marketplace": "5399",
    "online": "5399",
    "online_shopping": "5399",
    "ecommerce": "5399",
    "electronics": "5732",
    "clothing": "5651",
    "apparel": "5651",
    "ride_hailing": "4121",
    "transport": "4121",
    "transportation": "4121",
    "utilities": "4900",
    "telecom": "4814",
    "digital_goods": "5818",
    "entertainment": "7999",
    "bar": "5813",
    "bakery": "5462",
    "travel": "4722",
    "airline": "4511",
    "hotel": "7011",
    "jewelry": "5944",
    "transfer": "4829",
    "money_transfer": "4829",
    "gambling": "7995",
    "crypto": "6051",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def category_key(category: str) -> str:
    """The mapping's key of a category as sent: `Fast Food` and `fast-food` are `fast_food`."""
    return re.sub(r"[\s-]+", "_", category.strip().lower())


def category_mcc(category: object) -> str | None:
    """The MCC of one of the original's categories, or None when it is not known."""
    return CATEGORY_MCC.get(category_key(category)) if isinstance(category, str) else None


def parse_event_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 timestamp: naive is UTC, an offset is honoured.

    Raises ValueError for anything outside ISO_TIMESTAMP or not a real date and time.
    """
    match = ISO_TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"timestamp {text[:40]!r} is not ISO-8601 (YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc
    )
    millis = int(((fraction or "0") + "00")[:3])
    return (moment - _EPOCH) // timedelta(milliseconds=1) + millis - _offset_ms(offset)


def _offset_ms(offset: str | None) -> int:
    if offset is None or offset == "Z":
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 18 or minutes > 59:
        raise ValueError(f"timestamp offset {offset} is not a UTC offset")
    return (-1 if offset[0] == "-" else 1) * (hours * 60 + minutes) * 60_000


def normalise(data: Any) -> Any:
    """The original's fields under the canonical names, for fields the message lacks."""
    if not isinstance(data, dict) or not ({"timestamp", "merchant", "category"} & data.keys()):
        return data
    data = dict(data)
    stamp = data.pop("timestamp", None)
    if data.get("ts_ms") is None and stamp is not None:
        if not isinstance(stamp, str):
            raise ValueError("timestamp must be an ISO-8601 string")
        data["ts_ms"] = parse_event_ms(stamp)
    merchant = data.pop("merchant", None)
    if data.get("merchant_name") is None and merchant is not None:
        data["merchant_name"] = merchant
    category = data.pop("category", None)
    if data.get("merchant_mcc") is None and category is not None:
        data["merchant_mcc"] = category_mcc(category)
    return data
