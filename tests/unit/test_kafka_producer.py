"""The one producer wrapper: a delivery failure is kept and raised on the next call; a full
queue is waited out in one place. No broker: a closed local port makes every delivery fail."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from streamguard.errors import Kind, classify
from streamguard.kafka.producer import DeliveryErrors, KafkaDeliveryError, Producer

#: Nothing listens on port 1: a message times out after 200 ms, which is a delivery failure.
NOWHERE = {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 200, "log_level": 0}


def test_the_first_failure_is_raised_once_with_a_count_of_the_others() -> None:
    errors = DeliveryErrors()
    errors.note(None)
    errors.raise_first()  # nothing failed: nothing raised
    errors.note(KafkaError(KafkaError._MSG_TIMED_OUT))
    errors.note(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    with pytest.raises(KafkaDeliveryError) as raised:
        errors.raise_first()
    assert raised.value.error.code() == KafkaError._MSG_TIMED_OUT
    assert raised.value.also_failed == 1
    assert "and 1 more" in str(raised.value)
    errors.raise_first()  # raised once, then forgotten
    assert errors.total == 2


def test_a_delivery_error_is_labelled_by_its_code() -> None:
    timed_out = KafkaDeliveryError(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert classify(timed_out).kind is Kind.RETRYABLE
    too_large = KafkaDeliveryError(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert classify(too_large).kind is not Kind.RETRYABLE


def test_the_client_is_made_on_first_use() -> None:
    producer = Producer(NOWHERE)
    assert producer._inner is None and len(producer) == 0
    assert producer.client is producer.client


def test_a_failed_delivery_is_raised_by_the_next_flush_after_the_callers_callback() -> None:
    producer = Producer(NOWHERE)
    seen: list[KafkaError | None] = []
    producer.produce("t", b"v", b"k", on_delivery=lambda err, _msg: seen.append(err))
    with pytest.raises(KafkaDeliveryError) as raised:
        producer.flush(5)
    assert raised.value.error.code() == KafkaError._MSG_TIMED_OUT
    assert [e.code() for e in seen if e is not None] == [KafkaError._MSG_TIMED_OUT]
    assert producer.flush(1) == 0  # raised once


def test_a_failed_delivery_is_raised_by_the_next_produce() -> None:
    producer = Producer(NOWHERE)
    producer.produce("t", b"v", b"k")
    deadline = time.monotonic() + 5
    while len(producer) and time.monotonic() < deadline:
        producer.client.poll(0.05)  # the report arrives, as it would inside any other poll
    with pytest.raises(KafkaDeliveryError):
        producer.produce("t", b"second", b"k")
    assert producer.flush(5) == 0  # the second one was not queued: nothing else fails


def test_a_full_queue_is_polled_until_there_is_room() -> None:
    config = {**NOWHERE, "queue.buffering.max.messages": 1}
    producer = Producer(config, buffer_wait_s=5, buffer_poll_s=0.05)
    producer.produce("t", b"first", b"k")
    started = time.monotonic()
    # The queue is full until the first one times out; its failure is raised while waiting.
    with pytest.raises(KafkaDeliveryError):
        producer.produce("t", b"second", b"k")
    assert 0.1 < time.monotonic() - started < 3


def test_a_queue_that_stays_full_raises_buffer_error_after_the_wait() -> None:
    config = {**NOWHERE, "queue.buffering.max.messages": 1, "message.timeout.ms": 60_000}
    producer = Producer(config, buffer_wait_s=0.3, buffer_poll_s=0.05)
    producer.produce("t", b"first", b"k")
    started = time.monotonic()
    with pytest.raises(BufferError):
        producer.produce("t", b"second", b"k")
    assert time.monotonic() - started >= 0.3
    producer.client.purge()
