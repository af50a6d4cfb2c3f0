"""Decisions to the `fraud_decisions` topic, after they are committed in PostgreSQL (an outbox).

PostgreSQL is the record: each version is written there first, in the batch's transaction, with
published_at empty. Only then is it produced to Kafka, keyed by account_id; Kafka's acknowledgement
sets published_at (in the next batch's transaction). After a crash, the versions still unmarked are
produced again, so Kafka may hold a version twice but never misses one. Consumers dedupe on
(transaction_id, version).

A version Kafka refused is not counted and forgotten: the producer (kafka/producer.py) raises
the failure on its next produce, poll or flush, which the service labels (a timed-out delivery
is retryable: it resumes from PostgreSQL and this outbox sends the version again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import psycopg
from confluent_kafka import KafkaError, Message

from streamguard.domain.models import Decision
from streamguard.kafka import topics
from streamguard.kafka.producer import Producer
from streamguard.store import decisions as repo

log = logging.getLogger(__name__)


def to_wire(row: repo.HistoryRow) -> bytes:
    """The JSON message of one decision version (the shared Decision contract)."""
    verdict = row.verdict
    return (
        Decision(
            transaction_id=row.transaction_id,
            account_id=row.account_id,
            action=verdict.action,
            score=verdict.score,
            reasons=[reason.render() for reason in verdict.reasons],
            rule_ids=list(verdict.rule_ids),
            version=verdict.version,
            decided_ms=row.decided_ms,
        )
        .model_dump_json()
        .encode()
    )


class DecisionPublisher:
    """Produces committed versions and remembers which ones Kafka acknowledged."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._acknowledged: list[int] = []

    def publish(self, rows: Sequence[repo.HistoryRow]) -> None:
        """Queue the versions for Kafka; never blocks on the broker."""
        for row in rows:
            self.producer.produce(
                topics.FRAUD_DECISIONS,
                key=row.account_id.encode(),
                value=to_wire(row),
                headers={"version": str(row.verdict.version).encode()},
                on_delivery=partial(self._delivered, row.id),
            )
        self.producer.poll(0)

    def _delivered(self, history_id: int, error: KafkaError | None, _msg: Message) -> None:
        # A failure is left unmarked (sent again by the next resend) and raised by the producer.
        if error is None:
            self._acknowledged.append(history_id)

    def take_acknowledged(self) -> list[int]:
        """The history ids acknowledged since the last call."""
        self.producer.poll(0)
        done, self._acknowledged = self._acknowledged, []
        return done

    def give_back(self, history_ids: list[int]) -> None:
        """Acknowledgements taken by a transaction that rolled back: the next one marks them."""
        self._acknowledged[:0] = history_ids

    def resend_unpublished(self, conn: psycopg.Connection, *, timeout_s: float = 30) -> int:
        """Produce every committed version Kafka has not acknowledged; return how many.

        What is in flight is waited for and marked first, so only the versions Kafka never
        acknowledged (a crash, a rolled-back mark) go out again.
        """
        self.producer.flush(timeout_s)
        self._mark(conn)
        sent = 0
        while True:
            with conn.transaction():
                rows = repo.load_unpublished(conn)
            if not rows:
                return sent
            self.publish(rows)
            self.producer.flush(timeout_s)
            acknowledged = self._mark(conn)
            sent += len(rows)
            if len(acknowledged) < len(rows):
                log.warning("%d decisions still unpublished", len(rows) - len(acknowledged))
                return sent

    def _mark(self, conn: psycopg.Connection) -> list[int]:
        """Mark what Kafka acknowledged, in a transaction of its own; return those ids."""
        acknowledged = self.take_acknowledged()
        try:
            with conn.transaction():
                repo.mark_published(conn, acknowledged)
        except BaseException:
            self.give_back(acknowledged)
            raise
        return acknowledged
