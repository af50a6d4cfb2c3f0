"""decide's Kafka adapter: the group, assignment at the stored offsets, polls, dead letters.

Offsets are not committed to Kafka: on every assignment each partition is claimed in PostgreSQL
and put at the offset stored with its last batch (the `Owner`, i.e. the service, does both).
Across a rebalance the messages of partitions this instance no longer holds are dropped.

A consumer error is labelled by streamguard.errors: a fatal one (authentication, authorization,
a bad setting) raises, which ends the service with exit code 2; a transient one (the broker
restarting, a lost connection) is logged while librdkafka reconnects with its own backoff
(`reconnect.backoff.ms` doubling to `reconnect.backoff.max.ms`), and the return is logged too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
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
from streamguard.errors import Kind, classify_kafka
from streamguard.kafka import topics
from streamguard.kafka.client import consumer_config
from streamguard.kafka.producer import Producer
from streamguard.store.ledger import DeadLetter

log = logging.getLogger(__name__)

INPUT_TOPICS = (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS)


class Owner(Protocol):
    """What a rebalance asks of the rest of the decision service."""

    def drain(self) -> None:
        """Commit the batches already queued (they still own their partitions)."""

    def claim(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Claim the partitions in PostgreSQL; the group's stored offsets."""

    def release(self) -> None:
        """Forget every claim (the partitions were revoked)."""

    def owns(self, partition: Partition) -> bool:
        """True while this instance holds the partition's claim."""


class DecisionConsumer:
    """One instance's membership of the decision consumer group, and its dead-letter producer."""

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
        self.batch_size = settings.decide_batch_size
        self.poll_timeout_s = poll_timeout_s
        self.linger_s = settings.decide_linger_ms / 1000
        self.bounds = settings.event_time_bounds
        self._rebalances = 0
        self.outage = Outage()
        self._fatal: KafkaError | None = None
        self.group_id = settings.decide_group
        self.consumer = Consumer(
            consumer_config(
                settings,
                self.group_id,
                **{
                    "group.instance.id": settings.decide_instance_id,
                    "session.timeout.ms": 10_000,
                    "error_cb": self.on_error,
                },
            )
        )

    def on_error(self, error: KafkaError) -> None:
        """The client's own errors (a broker gone, refused credentials), from inside a poll.

        A fatal one is raised by the next `poll_batch` (a callback's exception would surface
        from librdkafka's thread); a transient one is logged while librdkafka reconnects.
        """
        self._note(error)

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
        self._raise_fatal()
        messages = self.poll()
        usable = [m for m in messages if m.error() is None]
        for message in messages:
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                self._note(error)
        self._raise_fatal()
        if usable:
            self.outage.answered()
        return split(usable, self.bounds) if usable else None

    def _note(self, error: KafkaError) -> None:
        label = classify_kafka(error)
        if label.kind is Kind.FATAL:
            self._fatal = self._fatal or error
        elif label.kind is Kind.RETRYABLE:
            self.outage.failed(label.reason)
        else:
            log.warning("consumer error: %s", label.reason)

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaException(self._fatal)

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


class Outage:
    """Transient consumer errors in a row: each logged (at most every 5 s), and the recovery."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.since: float | None = None
        self.errors = 0
        self._logged = 0.0

    def failed(self, reason: str) -> None:
        """A transient error: librdkafka retries; say so, without flooding the log."""
        now = self._clock()
        if self.since is None:
            self.since = now
        self.errors += 1
        if self.errors == 1 or now - self._logged >= 5:
            self._logged = now
            log.warning(
                "Kafka unavailable (retryable, %d errors in %.1f s): %s; "
                "librdkafka reconnects with backoff, the service keeps polling",
                self.errors,
                now - self.since,
                reason,
            )

    def answered(self) -> None:
        """Messages came: an outage, if there was one, is over."""
        if self.since is None:
            return
        log.info(
            "Kafka answering again after %.1f s (%d transient errors): consuming again",
            self._clock() - self.since,
            self.errors,
        )
        self.since, self.errors = None, 0
