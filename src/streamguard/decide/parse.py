"""Validation of a poll's messages: good ones by kind, bad ones as dead letters with a reason.

Pure, no I/O. The pydantic contract (domain/models.py) is the single definition of what is valid;
plainly valid transactions and labels take a fast path to the same row (fastparse.py), everything
else goes through pydantic. A label message holds one label or a batch of them (the generator
sends a batch per chunk); a batch with one bad label is dead-lettered whole, with the reason
naming that label's index. Card numbers are masked before anything is read
(domain/redaction.py): one in a text field is stored masked, and a rejected message keeps its
masked payload and a short reason.
A transaction whose event time is not believable against its Kafka append time (too far ahead,
or years behind: domain/event_time.py) is rejected too, the same rows the rules job skips.
Watermark heartbeats (kafka/heartbeat.py) are neither stored nor dead-lettered: only their
offsets count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Message
from pydantic import ValidationError

from streamguard.decide import fastparse
from streamguard.domain.event_time import EventTimeBounds
from streamguard.domain.models import FraudAlert, Transaction, labels_from_json
from streamguard.domain.redaction import redact_card_numbers, redact_card_numbers_in_fields
from streamguard.kafka import topics
from streamguard.kafka.heartbeat import is_heartbeat
from streamguard.store.ledger import DeadLetter, LabelRow, LedgerRow, label_row, ledger_row

_MODELS: dict[str, type[Transaction] | type[FraudAlert]] = {
    topics.TRANSACTIONS: Transaction,
    topics.FRAUD_ALERTS: FraudAlert,
}


class EventTimeError(ValueError):
    """A transaction whose event time is outside the bounds; the message is the reason."""


DEFAULT_BOUNDS = EventTimeBounds()


@dataclass
class Batch:
    """One poll's worth of messages, split by kind after validation; append times in epoch ms."""

    transactions: list[LedgerRow] = field(default_factory=list)
    alerts: list[tuple[FraudAlert, int | None]] = field(default_factory=list)
    labels: list[LabelRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many items the batch holds, good and bad (each label of a batch counts)."""
        return len(self.transactions) + len(self.alerts) + len(self.labels) + len(self.dead)

    def alert_append_ms(self) -> dict[str, int | None]:
        """For each alerted transaction of the batch, when Kafka stored its latest alert."""
        latest: dict[str, int | None] = {}
        for alert, appended in self.alerts:
            before = latest.get(alert.transaction_id)
            latest[alert.transaction_id] = max(filter(None, (before, appended)), default=None)
        return latest


def append_ms(message: Message) -> int | None:
    """When Kafka stored the message (the topics use LogAppendTime), in epoch ms."""
    kind, ts_ms = message.timestamp()
    return ts_ms if kind != 0 and ts_ms > 0 else None


#: What a producer may send for a required field that has another name (domain/original.py).
_MISSING_HINTS = {"ts_ms": " (send ts_ms, epoch ms UTC, or timestamp, ISO-8601)"}


def validation_reason(exc: Exception) -> str:
    """A short, human reason for a rejected message."""
    if isinstance(exc, EventTimeError):
        return str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "message"
        kind = "invalid JSON" if first.get("type") == "json_invalid" else "schema"
        hint = _MISSING_HINTS.get(where, "") if first.get("type") == "missing" else ""
        return f"{kind}: {where}: {first.get('msg')}{hint}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def _dead_letter(message: Message, exc: Exception) -> DeadLetter:
    """The message as a dead letter: masked key and payload, and the reason."""
    return DeadLetter(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        redact_card_numbers(message.key()),
        redact_card_numbers(message.value()),
        validation_reason(exc),
    )


def split(messages: list[Message], bounds: EventTimeBounds = DEFAULT_BOUNDS) -> Batch:
    """Validate each message; good ones by kind, bad ones as dead letters, heartbeats skipped."""
    batch = Batch()
    for message in messages:
        topic, partition = message.topic() or "", message.partition() or 0
        batch.offsets[(topic, partition)] = (message.offset() or 0) + 1
        row: LedgerRow | None = None
        value = redact_card_numbers_in_fields(message.value() or b"")
        if topic == topics.LABELS:  # one label or a batch, taken whole or dead-lettered whole
            rows = fastparse.label_rows(value)
            if rows is None:
                try:
                    rows = [label_row(label) for label in labels_from_json(value)]
                except (ValidationError, ValueError) as exc:
                    batch.dead.append(_dead_letter(message, exc))
                    continue
            batch.labels.extend(rows)
            continue
        if topic == topics.TRANSACTIONS:
            row = fastparse.ledger_row(value, append_ms(message), bounds)
            if row is not None:
                batch.transactions.append(row)
                continue
            if is_heartbeat(message.key(), message.value()):
                continue
        try:
            item = _MODELS[topic].model_validate_json(value)
            if isinstance(item, Transaction):  # a valid model may still be out of datetime range
                appended = append_ms(message)
                reason = bounds.violation(item.ts_ms, appended)
                if reason is not None:
                    raise EventTimeError(reason)
                row = ledger_row(item, appended)
        except (ValidationError, ValueError, OverflowError) as exc:
            batch.dead.append(_dead_letter(message, exc))
            continue
        if isinstance(item, FraudAlert):
            batch.alerts.append((item, append_ms(message)))
        elif row is not None:
            batch.transactions.append(row)
    return batch
