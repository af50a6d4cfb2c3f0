"""The ledger's Kafka adapter: the group, assignment at the stored offsets, polls, dead letters.

Offsets are not committed to Kafka: on every assignment each partition is claimed in PostgreSQL
and put at the offset stored with its last batch (the `Owner`, i.e. the service, does both).
Across a rebalance the messages of partitions this instance no longer holds are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streamguard.config import Settings
from streamguard.decide.batches import Partition
from streamguard.decide.parse import Batch, split
from streamguard.kafka import topics
from streamguard.kafka.client import consumer_config
from streamguard.kafka.producer import Producer
from streamguard.store.ledger import DeadLetter

log = logging.getLogger(__name__)

INPUT_TOPICS = (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS)


class Owner(Protocol):
    """What a rebalance asks of the rest of the ledger."""

    def drain(self) -> None:
        """Commit the batches already queued (they still own their partitions)."""

    def claim(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Claim the partitions in PostgreSQL; the group's stored offsets."""

    def release(self) -> None:
        """Forget every claim (the partitions were revoked)."""

    def owns(self, partition: Partition) -> bool:
        """True while this instance holds the partition's claim."""


class LedgerConsumer:
    """One instance's membership of the ledger's consumer group, and its dead-letter producer."""

    def __init__(
        self,
        settings: Settings,
        owner: Owner,
        producer: Producer,
        *,
        poll_timeout_s: float = 0.1,
    ) -> None:
        self.owner = owner
        self.producer = producer
        self.batch_size = settings.ledger_batch_size
        self.poll_timeout_s = poll_timeout_s
        self.linger_s = settings.ledger_linger_ms / 1000
        self.bounds = settings.event_time_bounds
        self._rebalances = 0
        self.group_id = settings.decision_group
        self.consumer = Consumer(
            consumer_config(
                settings,
                self.group_id,
                **{"group.instance.id": settings.ledger_instance_id, "session.timeout.ms": 10_000},
            )
        )

    def subscribe(self) -> None:
        """Join the group; partitions arrive through the rebalance callbacks."""
        self.consumer.subscribe(
            list(INPUT_TOPICS), on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Claim each partition and resume it from the offset stored with its last batch."""
        self.owner.drain()
        self._rebalances += 1
        self.resume(partitions)
        log.info("assigned %d partitions, resuming from the offsets in PostgreSQL", len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the batches already queued (they still own their partitions), then let go.

        A batch that is too late (another instance claimed one of its partitions first) fails
        its ownership check and rolls back; what was polled but not queued is dropped (poll).
        """
        self.owner.drain()
        self._rebalances += 1
        self.owner.release()
        log.info("revoked %d partitions", len(partitions))

    def resume(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        """Assign the partitions (default: those held now) at the offsets PostgreSQL holds."""
        if partitions is None:
            partitions = self.consumer.assignment()
        stored = self.owner.claim([(tp.topic, tp.partition) for tp in partitions])
        at = [
            TopicPartition(
                tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            )
            for tp in partitions
        ]
        self.consumer.assign(at)

    def poll(self) -> list[Message]:
        """Wait for one message, then for up to a batch more during the linger.

        Across a rebalance, the messages of partitions this instance no longer holds are dropped
        (they are another instance's now, read from the offsets stored). Those of partitions it
        kept may come twice, from before and after the rebalance put them back at their stored
        offsets: storing is idempotent, so that costs only the repeat.
        """
        rebalances = self._rebalances
        first = self.consumer.consume(1, self.poll_timeout_s)
        if not first:
            return []
        messages = first + self.consumer.consume(self.batch_size - 1, self.linger_s)
        if self._rebalances == rebalances:
            return messages
        return [m for m in messages if self.owner.owns((m.topic() or "", m.partition() or 0))]

    def poll_batch(self) -> Batch | None:
        """One poll, validated; None when nothing usable came. A fatal consumer error raises."""
        messages = self.poll()
        usable = [m for m in messages if m.error() is None]
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                raise KafkaException(error)
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
        return split(usable, self.bounds) if usable else None

    def dead_letter(self, letters: list[DeadLetter]) -> None:
        """Send rejected messages to the dead-letter topic, the reason in the headers."""
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
                    "service": self.group_id.encode(),
                },
            )
        if letters:  # rare, and the topic is the operators' alarm: wait for it
            self.producer.flush(30)

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()
