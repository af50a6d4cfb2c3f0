"""The consuming service: poll a batch, validate, write to PostgreSQL with the offsets, repeat.

Offsets live in PostgreSQL (table consumer_offsets), written in the same database transaction as
the rows, so a crash at any point neither loses nor doubles a row: on restart each partition is
resumed from the offset stored with the last committed batch. Messages that fail validation go
to the dead-letter topic (reason in the headers) and the dead_letters table; the loop goes on.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from streamguard.config import Settings
from streamguard.domain.models import FraudAlert, FraudLabel, Transaction, from_epoch_ms
from streamguard.kafka import topics
from streamguard.kafka.client import consumer_config, producer_config
from streamguard.store import ledger
from streamguard.store.db import connect

log = logging.getLogger(__name__)

GROUP_ID = "streamguard-ledger"
INPUT_TOPICS = (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS)
_MODELS = {
    topics.TRANSACTIONS: Transaction,
    topics.FRAUD_ALERTS: FraudAlert,
    topics.LABELS: FraudLabel,
}


@dataclass
class Batch:
    """One poll's worth of messages, split by kind after validation."""

    transactions: list[tuple[Transaction, datetime | None]] = field(default_factory=list)
    alerts: list[tuple[FraudAlert, datetime | None]] = field(default_factory=list)
    labels: list[FraudLabel] = field(default_factory=list)
    dead: list[ledger.DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def _append_time(message: Message) -> datetime | None:
    kind, ts_ms = message.timestamp()
    return from_epoch_ms(ts_ms) if kind != 0 and ts_ms > 0 else None


def validation_reason(exc: Exception) -> str:
    """A short, human reason for a rejected message."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "message"
        kind = "invalid JSON" if first.get("type") == "json_invalid" else "schema"
        return f"{kind}: {where}: {first.get('msg')}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def split(messages: list[Message]) -> Batch:
    """Validate each message; good ones by kind, bad ones as dead letters. Pure, no I/O."""
    batch = Batch()
    for message in messages:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        batch.offsets[(topic, partition)] = offset + 1
        model = _MODELS[topic]
        try:
            item = model.model_validate_json(message.value() or b"")
        except (ValidationError, ValueError) as exc:
            batch.dead.append(
                ledger.DeadLetter(
                    topic, partition, offset, message.key(), message.value(), validation_reason(exc)
                )
            )
            continue
        if isinstance(item, Transaction):
            batch.transactions.append((item, _append_time(message)))
        elif isinstance(item, FraudAlert):
            batch.alerts.append((item, _append_time(message)))
        else:
            batch.labels.append(item)
    return batch


class LedgerService:
    """Consumes transactions, alerts and labels into PostgreSQL, exactly once."""

    def __init__(self, settings: Settings, *, batch_size: int = 5000, poll_timeout_s: float = 0.1):
        self.settings = settings
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.stopping = False
        self.conn = connect(settings)
        self.consumer = Consumer(consumer_config(settings, GROUP_ID))
        self.producer = Producer(producer_config(settings))
        self.stored = 0
        self.after_store: Callable[[Batch], None] | None = None

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume each partition from the offset stored with the last committed batch."""
        stored = ledger.load_offsets(self.conn, GROUP_ID)
        self.conn.rollback()
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)

    def run(self) -> None:
        """Loop until SIGTERM or SIGINT."""
        self._install_signals()
        self.consumer.subscribe(list(INPUT_TOPICS), on_assign=self._on_assign)
        try:
            while not self.stopping:
                self.step()
        finally:
            self.close()

    def step(self) -> int:
        """Poll once and store what came; return the number of messages handled."""
        messages = self.consumer.consume(self.batch_size, self.poll_timeout_s)
        usable = [m for m in messages if m.error() is None]
        for message in messages:
            if message.error() is not None and message.error().code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", message.error())
        if not usable:
            return 0
        batch = split(usable)
        self.store(batch)
        self._dead_letter(batch.dead)
        if self.after_store is not None:
            self.after_store(batch)
        return len(usable)

    def store(self, batch: Batch) -> None:
        """One database transaction: the rows and the offsets that produced them."""
        with self.conn.transaction():
            if batch.transactions:
                self.stored += ledger.save_transactions(self.conn, batch.transactions)
            if batch.alerts:
                ledger.save_alerts(self.conn, batch.alerts)
            if batch.labels:
                ledger.save_labels(self.conn, batch.labels)
            if batch.dead:
                ledger.save_dead_letters(self.conn, batch.dead)
            ledger.save_offsets(self.conn, GROUP_ID, batch.offsets)

    def _dead_letter(self, letters: list[ledger.DeadLetter]) -> None:
        for letter in letters:
            self.producer.produce(
                topics.DEAD_LETTERS,
                key=letter.key,
                value=letter.payload,
                headers={
                    "reason": letter.reason.encode(),
                    "source_topic": letter.topic.encode(),
                    "source_partition": str(letter.partition).encode(),
                    "source_offset": str(letter.offset).encode(),
                    "service": GROUP_ID.encode(),
                },
            )
        if letters:
            self.producer.flush(30)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            if self.stopping:  # a second Ctrl+C: give up waiting
                signal.signal(signum, signal.SIG_DFL)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def close(self) -> None:
        """Leave the group and close the connections."""
        self.producer.flush(10)
        self.consumer.close()
        self.conn.close()


def run(settings: Settings) -> None:
    """Entry point of the ledger process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    started = time.monotonic()
    service = LedgerService(settings)
    log.info("ledger consuming %s as %s", ", ".join(INPUT_TOPICS), GROUP_ID)
    service.run()
    log.info(
        "ledger stopped after %.0f s, %d new transactions",
        time.monotonic() - started,
        service.stored,
    )
