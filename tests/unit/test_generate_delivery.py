"""The generator's Kafka sink produces through the one wrapper: a message Kafka did not take is
counted and then raised, never counted and forgotten. No broker: nothing listens on port 1."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from streamguard.config import Settings
from streamguard.generate.delivery import KafkaSink
from streamguard.generate.engine import Engine, GeneratorConfig
from streamguard.generate.modes import run_batch
from streamguard.kafka import topics
from streamguard.kafka.producer import KafkaDeliveryError

NOWHERE = Settings(_env_file=None, kafka_bootstrap="127.0.0.1:1")  # type: ignore[call-arg]


def _sink(said: list[str]) -> KafkaSink:
    return KafkaSink(NOWHERE, delivery_timeout_s=0.3, say=said.append, extra={"log_level": 0})


def test_a_failed_delivery_is_raised_by_the_generators_next_send() -> None:
    said: list[str] = []
    sink = _sink(said)
    engine = Engine(GeneratorConfig(accounts=50), seed=1)
    run_batch(engine, sink, count=10)  # queued: the broker has not answered yet
    deadline = time.monotonic() + 10
    with pytest.raises(KafkaDeliveryError) as raised:  # noqa: PT012 - raised by a later call
        while time.monotonic() < deadline:
            time.sleep(0.1)
            run_batch(engine, sink, count=1)  # the next send raises what the callback kept
    assert raised.value.error.code() == KafkaError._MSG_TIMED_OUT
    assert sink.report.failed[topics.TRANSACTIONS] >= 1  # counted as well, and said
    assert any("delivery failed" in line for line in said)


def test_close_raises_what_failed_after_the_last_send() -> None:
    sink = _sink([])
    run_batch(Engine(GeneratorConfig(accounts=50), seed=1), sink, count=20)
    with pytest.raises(KafkaDeliveryError, match="and 20 more"):  # 20 transactions, 1 batch
        sink.close(timeout_s=10)
    assert sink.report.failed[topics.TRANSACTIONS] == 20 == sink.report.failed[topics.LABELS]
    assert not sink.report.ok
