"""Watermark heartbeats: a tiny record on every transactions partition, every second.

Event time only moves when records arrive, so a quiet partition would hold every window open
until unrelated traffic came. The rules process appends a heartbeat to each partition; Kafka
stamps it with its append time, which the rules job reads as that record's event time (the
`transactions_raw` table), so the watermark follows the broker's clock while the input is quiet.
The heartbeat is not a transaction: the rules' `transactions` view drops it (no id), and the
decision service recognises it by key and value and skips it (no dead letter, offset kept).
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaException

from streamguard.config import Settings
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.kafka.producer import Producer

log = logging.getLogger(__name__)

HEARTBEAT_KEY = b"__streamguard_heartbeat__"
HEARTBEAT_VALUE = b'{"heartbeat":true}'


def is_heartbeat(key: bytes | None, value: bytes | None) -> bool:
    """True for a heartbeat record (both key and value match exactly)."""
    return key == HEARTBEAT_KEY and value == HEARTBEAT_VALUE


class Heartbeat:
    """A daemon thread appending a heartbeat to every transactions partition each interval."""

    def __init__(self, settings: Settings, *, topic: str = topics.TRANSACTIONS) -> None:
        self.interval_s = settings.heartbeat_interval_s
        self.topic = topic
        # a beat is worth little once late: a full queue fails it at once, the next one follows
        self.producer = Producer(producer_config(settings), buffer_wait_s=0)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Begin beating (no-op when the interval is 0)."""
        if self.interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and flush what is in flight."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.producer.flush(5)
        except KafkaException as exc:  # a lost beat harms nothing: the next run beats again
            log.warning("heartbeat not delivered: %s", exc)

    def beat(self) -> int:
        """One heartbeat on each partition of the topic; returns how many were produced."""
        metadata = self.producer.list_topics(self.topic, timeout_s=5)
        partitions = metadata.topics[self.topic].partitions
        for partition in partitions:
            self.producer.produce(
                self.topic, key=HEARTBEAT_KEY, value=HEARTBEAT_VALUE, partition=partition
            )
        self.producer.poll(0)
        self.sent += len(partitions)
        return len(partitions)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except (KafkaException, BufferError, KeyError) as exc:  # the broker may be restarting
                log.warning("heartbeat not sent: %s", exc)
            self._stop.wait(self.interval_s)
