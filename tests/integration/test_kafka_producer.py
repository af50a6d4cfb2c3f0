"""The producer wrapper against the real broker: a message Kafka refuses is not lost in a
callback, it is raised by the next flush (and by the next produce), labelled by its code."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import KafkaError

from streamguard.errors import Kind, classify
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.kafka.producer import KafkaDeliveryError, Producer
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


def test_a_produce_to_a_missing_topic_is_raised_by_flush(infra: StackHandle) -> None:
    # The stack's broker runs with auto.create.topics.enable=false.
    producer = Producer(producer_config(infra.settings, **{"message.timeout.ms": 3_000}))
    producer.produce(f"missing-{uuid.uuid4().hex[:8]}", b"{}", b"k")
    with pytest.raises(KafkaDeliveryError) as raised:
        producer.flush(15)
    assert raised.value.error.code() in {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._MSG_TIMED_OUT,
    }
    assert classify(raised.value).kind is Kind.RETRYABLE  # the topic may yet be created


def test_a_message_the_broker_refuses_as_too_large_is_raised_by_the_next_produce(
    infra: StackHandle,
) -> None:
    # The client would let 4 MB through; the broker's message.max.bytes (1 MB) refuses it.
    config = producer_config(
        infra.settings, **{"message.max.bytes": 8_000_000, "compression.type": "none"}
    )
    producer = Producer(config)
    producer.produce(topics.DEAD_LETTERS, b"x" * 4_000_000, b"k")
    deadline = time.monotonic() + 15
    while len(producer) and time.monotonic() < deadline:
        producer.client.poll(0.1)  # the broker's answer arrives; nothing is raised yet
    with pytest.raises(KafkaDeliveryError) as raised:
        producer.produce(topics.DEAD_LETTERS, b"small", b"k")
    assert raised.value.error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert classify(raised.value).kind is not Kind.RETRYABLE
    assert producer.flush(15) == 0  # the small one was never queued; nothing else fails
