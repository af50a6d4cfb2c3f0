"""The one Kafka producer of the service, a thin class over confluent-kafka (quix-streams' style).

librdkafka reports a failed delivery later, from a callback, on whichever thread polls. A
callback that only counts the failure leaves it unread, so this wrapper keeps the error and
raises it on the next `produce`, `poll` or `flush`: the caller cannot go on as if it had been
delivered. The raised `KafkaDeliveryError` is a `KafkaException` holding the `KafkaError`, so
`streamguard.errors.classify` labels it by its code like any other Kafka error.

A full local queue (`BufferError`) is handled here, once: serve the delivery reports (poll), then
try again, until `buffer_wait_s` has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, Message

#: The signature of a per-message delivery callback.
OnDelivery = Callable[[KafkaError | None, Message], None]


class KafkaDeliveryError(KafkaException):
    """A message Kafka did not take; `args[0]` is its KafkaError."""

    def __init__(self, error: KafkaError, *, also_failed: int = 0) -> None:
        super().__init__(error)
        self.error = error
        self.also_failed = also_failed

    def __str__(self) -> str:
        more = f" (and {self.also_failed} more)" if self.also_failed else ""
        return f"delivery failed: {self.error.str()}{more}"


class DeliveryErrors:
    """The failures the delivery callback saw since they were last raised (pure, no client)."""

    def __init__(self) -> None:
        self._first: KafkaError | None = None
        self._more = 0
        self.total = 0

    def note(self, error: KafkaError | None) -> None:
        """Keep a failed delivery (the first one; the others are counted)."""
        if error is None:
            return
        self.total += 1
        if self._first is None:
            self._first = error
        else:
            self._more += 1

    def raise_first(self) -> None:
        """Raise the first kept failure as KafkaDeliveryError, and forget them all."""
        if self._first is None:
            return
        error, more = self._first, self._more
        self._first, self._more = None, 0
        raise KafkaDeliveryError(error, also_failed=more)


class Producer:
    """A lazily created confluent-kafka producer that never loses a delivery error.

    A delivery callback in `config` ("on_delivery", for every message) is kept and called
    first; the wrapper's own report then keeps the failure. With librdkafka's
    `delivery.report.only.error`, a message that succeeds costs no Python call at all.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        buffer_wait_s: float = 30.0,
        buffer_poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.errors = DeliveryErrors()
        self._config = {**config, "on_delivery": self._reporter(config.get("on_delivery"))}
        self._inner: confluent_kafka.Producer | None = None
        self.buffer_wait_s = buffer_wait_s
        self.buffer_poll_s = buffer_poll_s
        self._clock = clock

    @property
    def client(self) -> confluent_kafka.Producer:
        """The confluent-kafka producer, made on first use."""
        if self._inner is None:
            self._inner = confluent_kafka.Producer(self._config)
        return self._inner

    def produce(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        *,
        partition: int | None = None,
        headers: dict[str, bytes] | None = None,
        on_delivery: OnDelivery | None = None,
    ) -> None:
        """Queue one message; first raise any delivery failure seen since the last call."""
        self.errors.raise_first()
        client = self._inner or self.client
        kwargs: dict[str, Any] = {}
        if on_delivery is not None:  # replaces the global report for this message: wrap it
            kwargs["on_delivery"] = self._reporter(on_delivery)
        if partition is not None:
            kwargs["partition"] = partition
        if headers is not None:
            kwargs["headers"] = headers
        try:
            client.produce(topic, value, key, **kwargs)
        except BufferError:
            if self.buffer_wait_s <= 0:
                raise
            self._produce_when_room(topic, value, key, kwargs)

    def produce_all(
        self, topic: str, values: Sequence[bytes | str], keys: Sequence[bytes | str]
    ) -> None:
        """Queue many keyed messages to one topic: a bulk producer's hot path.

        The same guarantees as `produce` (a failure seen before is raised first, a full queue is
        waited out here), in one loop over the client's own method: no Python call per message
        but the client's, which keeps the generator's batch mode as fast as a bare producer.
        """
        self.errors.raise_first()
        produce = (self._inner or self.client).produce
        for value, key in zip(values, keys, strict=True):
            try:
                produce(topic, value, key)
            except BufferError:
                if self.buffer_wait_s <= 0:
                    raise
                self._produce_when_room(topic, value, key, {})

    def _produce_when_room(
        self, topic: str, value: bytes | str | None, key: bytes | str | None, kwargs: dict
    ) -> None:
        """The one place a full local queue is waited out: serve reports, retry, then give up."""
        deadline = self._clock() + self.buffer_wait_s
        while True:
            self.client.poll(self.buffer_poll_s)  # delivery reports free the queue
            self.errors.raise_first()
            try:
                self.client.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                if self._clock() >= deadline:
                    raise

    def _reporter(self, on_delivery: OnDelivery | None) -> OnDelivery:
        note = self.errors.note
        if on_delivery is None:
            return lambda error, _message: note(error)

        def report(error: KafkaError | None, message: Message) -> None:
            on_delivery(error, message)
            note(error)

        return report

    def poll(self, timeout_s: float = 0) -> int:
        """Serve delivery reports; raise a failure among them."""
        served = self.client.poll(timeout_s)
        self.errors.raise_first()
        return int(served)

    def flush(self, timeout_s: float = 30) -> int:
        """Wait for every queued message (up to `timeout_s`); raise a failure; return the rest."""
        left = self.client.flush(timeout_s)
        self.errors.raise_first()
        return int(left)

    def purge(self) -> None:
        """Drop what is still queued; each dropped message reports a failure (_PURGE_QUEUE)."""
        if self._inner is not None:
            self._inner.purge()

    def close(self) -> None:
        """Release the client (confluent-kafka >= 2.11 has close; older ones free it on GC)."""
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
        self._inner = None

    def list_topics(self, topic: str | None = None, timeout_s: float = 5) -> Any:
        """The cluster's metadata (of one topic, if given)."""
        return self.client.list_topics(topic, timeout=timeout_s)

    def __len__(self) -> int:
        """Messages queued or in flight."""
        return 0 if self._inner is None else len(self._inner)
