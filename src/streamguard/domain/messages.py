"""A Kafka message as an operator reads it: masked, pretty-printed, its headers decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from streamguard.domain.redaction import redact_card_numbers

#: The most bytes of a payload shown; a bigger one is cut (and says so).
MAX_SHOWN_BYTES = 16_384


@dataclass(frozen=True)
class ShownMessage:
    """One message of the browser: text to show (never HTML), card numbers masked."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str | None
    value: str
    is_json: bool
    headers: list[tuple[str, str]]
    #: a dead letter's reason (its `reason` header), if it has one
    reason: str | None = None


def text(raw: bytes | None) -> str | None:
    """Bytes as text with card numbers masked; undecodable bytes shown as replacements."""
    if raw is None:
        return None
    return (redact_card_numbers(raw) or b"").decode("utf-8", errors="replace")


def pretty(raw: bytes | None) -> tuple[str, bool]:
    """A payload as indented JSON when it is JSON (True), else as text (False); masked."""
    if raw is None:
        return "(null)", False
    masked = redact_card_numbers(raw[:MAX_SHOWN_BYTES]) or b""
    cut = len(raw) > MAX_SHOWN_BYTES
    try:
        body = json.loads(masked)
    except ValueError:
        shown = masked.decode("utf-8", errors="replace")
        return (shown + "\n… (cut)" if cut else shown), False
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=False), True


def shown(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None,
) -> ShownMessage:
    """A consumed message, ready to show."""
    body, is_json = pretty(value)
    moment = (
        datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
        if timestamp_ms is not None and timestamp_ms > 0
        else None
    )
    decoded = [(str(k), text(v) or "") for k, v in headers or []]
    return ShownMessage(
        topic,
        partition,
        offset,
        moment,
        text(key),
        body,
        is_json,
        decoded,
        next((v for k, v in decoded if k == "reason"), None),
    )
