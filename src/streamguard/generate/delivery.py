"""Where generated messages go: Kafka (idempotent, acks=all), stdout, or nowhere (--dry-run).

The Kafka sink produces through the project's one producer wrapper (`kafka/producer.py`), so a
message Kafka did not take is never counted and forgotten: librdkafka retries broker failures
until `message.timeout.ms`, and a message that still fails is counted per topic here, then its
error is raised by the next `send`, `poll` or `close` (`KafkaDeliveryError`), which ends the run
with exit code 1. A full local queue blocks the generator in the wrapper (it polls and retries)
instead of discarding. Delivery reports are asked for failures only
(`delivery.report.only.error`), so success costs no Python callback: after `close()` everything
that neither failed nor is still queued was acknowledged by the broker.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import orjson
from confluent_kafka import KafkaError, Message

from streamguard.config import Settings
from streamguard.generate.wire import Rendered, label_batches
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.kafka.producer import Producer

#: Producer settings for throughput (batch mode); stream mode keeps the project's defaults.
BULK_OVERRIDES: dict[str, Any] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 262_144,
    "compression.type": "lz4",
}


@dataclass
class DeliveryReport:
    """What happened to the messages, per topic."""

    produced: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    undelivered: int = 0
    errors: list[str] = field(default_factory=list)

    def delivered(self, topic: str) -> int:
        """Messages of `topic` acknowledged by the broker (after close: all that did not fail)."""
        return self.produced[topic] - self.failed[topic]

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing was left undelivered."""
        return not sum(self.failed.values()) and not self.undelivered

    def summary(self) -> str:
        """'transactions: delivered N, failed F; labels: ...' for the end of a run."""
        text = "; ".join(
            f"{name}: delivered {self.delivered(topic):,}, failed {self.failed[topic]:,}"
            for name, topic in (("transactions", topics.TRANSACTIONS), ("labels", topics.LABELS))
            if self.produced[topic] or self.failed[topic]
        )
        if self.undelivered:
            text += f"; {self.undelivered:,} never confirmed either way"
        return text


class Sink(Protocol):
    """Takes rendered chunks; reports at the end."""

    report: DeliveryReport

    def send(self, rendered: Rendered) -> None: ...

    def close(self, timeout_s: float = 120) -> DeliveryReport: ...


def labels_in(value: bytes | None) -> int:
    """How many labels a `transaction_labels` message held (a failed one counts each)."""
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return 1
    return len(parsed) if isinstance(parsed, list) else 1


class KafkaSink:
    """Transactions to Kafka keyed by account id, and their labels in batches (a chunk's labels
    in messages of up to `wire.LABELS_PER_MESSAGE`). The report counts labels, not messages."""

    def __init__(
        self,
        settings: Settings,
        *,
        bulk: bool = False,
        delivery_timeout_s: float | None = None,
        say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
        extra: dict[str, Any] | None = None,
    ):
        overrides: dict[str, Any] = dict(BULK_OVERRIDES) if bulk else {}
        overrides.update(extra or {})
        if delivery_timeout_s is not None:
            overrides["message.timeout.ms"] = int(delivery_timeout_s * 1000)
        overrides.update(
            {
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                "error_cb": self._on_error,
            }
        )
        self.report = DeliveryReport()
        self._say = say
        self._last_warning = 0.0
        # A queue still full after the delivery timeout holds messages that are failing anyway:
        # wait that long for room, so that their failures, not a BufferError, end the run.
        config = producer_config(settings, **overrides)
        wait_s = int(config["message.timeout.ms"]) / 1000 + 10
        self._producer = Producer(config, buffer_wait_s=wait_s, buffer_poll_s=0.05)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        topic = msg.topic() or "?"
        self.report.failed[topic] += labels_in(msg.value()) if topic == topics.LABELS else 1
        if len(self.report.errors) < 5:
            self.report.errors.append(f"{msg.topic()}: {err.str()}")
            self._say(f"delivery failed ({msg.topic()}): {err.str()}")

    def _on_error(self, err: KafkaError) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            self._say(f"kafka: {err.str()} (retrying; nothing is dropped)")

    def send(self, rendered: Rendered) -> None:
        """Queue every message of the chunk; raise a delivery failure seen since the last one."""
        self._producer.produce_all(topics.TRANSACTIONS, rendered.values, rendered.keys)
        self.report.produced[topics.TRANSACTIONS] += len(rendered)
        for batch in label_batches(rendered.labels):  # not keyed: nothing joins labels by account
            self._producer.produce(topics.LABELS, batch)
        self.report.produced[topics.LABELS] += len(rendered)
        self._producer.poll(0)

    def poll(self) -> None:
        """Serve delivery reports (failures) without sending; raise one that failed."""
        self._producer.poll(0)

    def close(self, timeout_s: float = 120) -> DeliveryReport:
        """Wait for every acknowledgement (up to `timeout_s`), then report; raise a failure."""
        try:
            if self._producer.flush(timeout_s):
                # Out of time: purge the rest so that each one reports its failure and is counted.
                self._say(
                    f"kafka: {len(self._producer):,} messages unconfirmed after {timeout_s:.0f} s"
                )
                self._producer.purge()
                self._producer.flush(5)
        finally:
            self.report.undelivered = len(self._producer)
        if not self.report.undelivered:
            self._producer.close()
        return self.report


class TextSink:
    """Transactions as JSON lines on a text stream (labels are not written)."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.report = DeliveryReport()

    def send(self, rendered: Rendered) -> None:
        """Write each transaction on its own line."""
        self.out.write("\n".join(rendered.values) + "\n")
        self.report.produced[topics.TRANSACTIONS] += len(rendered)

    def close(self, timeout_s: float = 120) -> DeliveryReport:
        """Flush the stream."""
        self.out.flush()
        return self.report


class MemorySink:
    """Keeps every message (tests, `sample_transactions`)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: list[str] = []
        self.labels: list[str] = []
        self.report = DeliveryReport()

    def send(self, rendered: Rendered) -> None:
        """Keep the chunk."""
        self.keys.extend(rendered.keys)
        self.values.extend(rendered.values)
        self.labels.extend(rendered.labels)
        self.report.produced[topics.TRANSACTIONS] += len(rendered)
        self.report.produced[topics.LABELS] += len(rendered)

    def close(self, timeout_s: float = 120) -> DeliveryReport:
        """Nothing to wait for."""
        return self.report


class NullSink:
    """Counts and drops (--dry-run: how fast can the generator alone go)."""

    def __init__(self) -> None:
        self.report = DeliveryReport()

    def send(self, rendered: Rendered) -> None:
        """Count the chunk."""
        self.report.produced[topics.TRANSACTIONS] += len(rendered)

    def close(self, timeout_s: float = 120) -> DeliveryReport:
        """Nothing to wait for."""
        return self.report
