"""A fast path for the common case: a canonical transaction message straight to its COPY line.

The pydantic contract (domain/models.py) stays the one definition of validity. This path accepts
only messages that are plainly valid under it (exact JSON types, no surrounding whitespace, ASCII
digits, nothing COPY would escape, values well inside the limits) and returns the COPY text of
exactly the row the contract would give; for anything else it returns None and the caller asks
pydantic, which accepts or rejects with its reason. No value object is built: that is where the
time goes, and the text fields are checked all at once by one regular expression over the line.
tests/unit/test_decide_fastparse.py checks the two side by side.

The generator's ground-truth labels take a fast path of their own (`label_rows`): they are as
many as the transactions, and pydantic was most of their cost.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import orjson

from streamguard.domain.event_time import EventTimeBounds
from streamguard.domain.models import MAX_LABEL_BATCH, Channel, PayeeKeyType, from_epoch_ms
from streamguard.store.ledger import LABEL_COLUMNS, TX_COLUMNS, LabelRow, LedgerRow

#: 12 integer digits + 2 decimals stays inside numeric(14, 2) without asking how pydantic counts.
_MAX_AMOUNT = 10**12
#: datetime's year 9999.
_MAX_TS_MS = 253_402_300_800_000

#: The wire's fields in COPY order (the event time last of them).
_FIELDS = itemgetter(*TX_COLUMNS[:-2], "ts_ms")
#: A null field's mark in the line while it is checked; it becomes COPY's \N afterwards.
_NULL = "\x00"


def _text(max_len: int, min_len: int) -> str:
    """A value of min_len..max_len characters without a tab or whitespace at either end (the
    contract strips whitespace, so such a value would not be stored as sent)."""
    inner = rf"\S(?:[^\t]{{0,{max_len - 2}}}\S)?"
    return inner if min_len else f"(?:{inner})?"


def nullable(pattern: str) -> str:
    """The pattern of an optional field: its value, or null."""
    return f"(?:{pattern}|{_NULL})"


_NUMBER = r"[^\t]+"  # formatted here from a checked number
#: The COPY line's columns up to the event time, each as the contract allows it: one match
#: checks them all. The id, account, amount and event time are required, the rest nullable.
_LINE = re.compile(
    "\t".join(
        (
            _text(64, 1),  # transaction_id
            _text(64, 1),  # account_id
            nullable(_text(64, 1)),  # card_token
            nullable("[0-9]{4}"),  # card_last4
            _NUMBER,  # amount
            nullable("[A-Z]{3}"),  # currency
            nullable("(?:" + "|".join(channel.value for channel in Channel) + ")"),
            nullable(_text(64, 1)),  # merchant_id
            nullable(_text(200, 0)),  # merchant_name
            nullable("[0-9]{4}"),  # merchant_mcc
            nullable("(?:" + "|".join(kind.value for kind in PayeeKeyType) + ")"),
            nullable(_text(100, 0)),  # city
            nullable("[A-Z]{2}"),  # state
            nullable(_NUMBER),  # lat
            nullable(_NUMBER),  # lon
            nullable(_text(64, 0)),  # device_id
            nullable(_text(45, 0)),  # ip_address
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
    (tx_id, account, token, last4, amount, currency, channel, merchant, name, mcc, payee, city,
     state, lat, lon, device, ip, ts_ms) = values  # fmt: skip
    if (
        type(tx_id) is not str  # the required core: never null (the null mark would match)
        or type(account) is not str
        or not (lat is None or (_number(lat) and -90 <= lat <= 90))
        or not (lon is None or (_number(lon) and -180 <= lon <= 180))
        or not (type(ts_ms) is int and 0 < ts_ms < _MAX_TS_MS)
        or type(d.get("schema_version", 1)) is not int
        or (append_ms is not None and not 0 < append_ms < _MAX_TS_MS)
        or not bounds.accepts(ts_ms, append_ms)
    ):
        return None
    amount_text = _amount(amount)
    if amount_text is None:
        return None
    lat_text = None if lat is None else repr(float(lat))
    lon_text = None if lon is None else repr(float(lon))
    fields: tuple[Any, ...] = (tx_id, account, token, last4, amount_text, currency, channel,
                               merchant, name, mcc, payee, city, state, lat_text, lon_text,
                               device, ip, _timestamp(ts_ms))  # fmt: skip
    nulls = fields.count(None)
    try:  # join refuses anything but text, so every field below is a str
        line = "\t".join(fields if not nulls else [_NULL if v is None else v for v in fields])
    except TypeError:
        return None
    # COPY text gives meaning to backslash, newline and carriage return; leave such values to
    # psycopg's escaping on the contract's path. A NUL the sender wrote is theirs to explain too.
    if (
        _LINE.fullmatch(line) is None
        or "\\" in line
        or "\n" in line
        or "\r" in line
        or line.count(_NULL) != nulls
    ):
        return None
    if nulls:
        line = line.replace(_NULL, "\\N")
    line += f"\t{_timestamp(append_ms)}\n" if append_ms else "\t\\N\n"
    return LedgerRow(tx_id, account, merchant, device, append_ms, line)


_LABEL_FIELDS = itemgetter(*LABEL_COLUMNS)


def _label(parsed: Any) -> LabelRow | None:
    """The row of one parsed label if plainly valid: a JSON object whose four fields have their
    exact JSON types and whose texts have no whitespace to strip, so that the contract would give
    this very row."""
    try:
        tx_id, account, scenario, is_fraud = _LABEL_FIELDS(parsed)
    except (KeyError, TypeError):
        return None
    for text in (tx_id, account, scenario):
        if type(text) is not str or text != text.strip():
            return None
    if type(is_fraud) is not bool:
        return None
    return (tx_id, account, scenario, is_fraud)


def label_rows(payload: bytes) -> list[LabelRow] | None:
    """The rows of a plainly valid label message, one label or a batch of them, or None: ask
    pydantic (`labels_from_json`). A batch is taken whole or not at all, so that a bad label
    sends its whole message to the dead letters. No value object is built, as for transactions."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(parsed) is not list:
        row = _label(parsed)
        return None if row is None else [row]
    if not 1 <= len(parsed) <= MAX_LABEL_BATCH:
        return None
    rows = [_label(item) for item in parsed]
    return None if None in rows else rows  # type: ignore[return-value]
