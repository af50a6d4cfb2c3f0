"""The generator against a real broker: every message delivered, keyed, valid and labelled;
the stream mode's rate; an attack; and no silent loss when the broker is unreachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamguard.config import Settings
from streamguard.domain.models import Transaction, labels_from_json
from streamguard.generate.delivery import KafkaSink
from streamguard.generate.engine import Engine, GeneratorConfig
from streamguard.generate.modes import run_batch
from streamguard.kafka import topics
from streamguard.kafka.producer import KafkaDeliveryError
from tests.stackfixture import StackHandle, free_port, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> Iterator[StackHandle]:
    with running_stack(only="kafka") as stack:
        yield stack


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def read_since(
    settings: Settings, topic: str, since: dict[int, int]
) -> list[tuple[str | None, str]]:
    """Every (key, value) written to `topic` after the offsets `since`."""
    until = end_offsets(settings, topic)
    wanted = sum(until[p] - since.get(p, 0) for p in until)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in until])
    out: list[tuple[str, str]] = []
    try:
        for _ in range(600):
            if len(out) >= wanted:
                break
            for message in consumer.consume(5000, 0.5):
                if message.error() is None:
                    key = message.key()
                    out.append((key and key.decode(), message.value().decode()))
    finally:
        consumer.close()
    return out


def snapshot(settings: Settings) -> dict[str, dict[int, int]]:
    return {topic: end_offsets(settings, topic) for topic in (topics.TRANSACTIONS, topics.LABELS)}


def test_batch_delivers_every_transaction_and_its_label(kafka: StackHandle) -> None:
    settings = kafka.settings
    before = snapshot(settings)
    result = kafka.cli(
        "generate", "batch", "-n", "20000", "--seed", "7", "--fraud-rate", "0.05", timeout=300
    )
    assert "transactions: delivered 20,000, failed 0; labels: delivered 20,000, failed 0" in (
        " ".join(result.stdout.split())
    )
    txs = read_since(settings, topics.TRANSACTIONS, before[topics.TRANSACTIONS])
    batches = read_since(settings, topics.LABELS, before[topics.LABELS])
    assert len(txs) == 20_000
    labels = [label for _, value in batches for label in labels_from_json(value.encode())]
    assert len(labels) == 20_000
    # each of the two chunks (8,192 and 11,808) in messages of up to 500 labels: 17 + 24
    assert len(batches) == 41 and all(key is None for key, _ in batches)
    parsed = {}
    for key, value in txs:
        tx = Transaction.model_validate_json(value)
        assert key == tx.account_id
        parsed[tx.transaction_id] = tx
    truth = {label.transaction_id: label for label in labels}
    assert truth.keys() == parsed.keys()
    assert all(truth[i].account_id == parsed[i].account_id for i in parsed)
    fraud = sum(label.is_fraud for label in truth.values())
    assert fraud / len(truth) == pytest.approx(0.05, rel=0.25)


def test_stream_mode_sends_its_rate(kafka: StackHandle) -> None:
    before = snapshot(kafka.settings)
    result = kafka.cli(
        "generate", "stream", "--rate", "200", "--duration-s", "5", "--fraud-rate", "0", timeout=120
    )
    assert "failed 0" in result.stdout
    after = snapshot(kafka.settings)
    sent = sum(after[topics.TRANSACTIONS].values()) - sum(before[topics.TRANSACTIONS].values())
    assert sent == pytest.approx(1000, rel=0.05)


def test_attack_sends_the_scenario_on_the_account(kafka: StackHandle) -> None:
    settings = kafka.settings
    before = snapshot(settings)
    result = kafka.cli(
        "generate",
        "attack",
        "--scenario",
        "card_testing",
        "--account",
        "ACC000123",
        "--no-wait",
        timeout=120,
    )
    assert "card_testing" in result.stdout
    txs = [
        Transaction.model_validate_json(v)
        for _, v in read_since(settings, topics.TRANSACTIONS, before[topics.TRANSACTIONS])
    ]
    assert {tx.account_id for tx in txs} == {"ACC000123"}
    assert sum(tx.amount < 10 for tx in txs) >= 3 and txs[-1].amount > 1000


def test_an_unreachable_broker_fails_loudly_never_silently(kafka: StackHandle) -> None:
    nowhere = Settings(_env_file=None, kafka_bootstrap=f"localhost:{free_port()}")  # type: ignore[call-arg]
    messages: list[str] = []
    sink = KafkaSink(nowhere, delivery_timeout_s=3, say=messages.append)
    run_batch(Engine(GeneratorConfig(accounts=100), seed=1), sink, count=500)
    with pytest.raises(KafkaDeliveryError):  # raised, not only counted
        sink.close(timeout_s=30)
    report = sink.report
    assert not report.ok
    assert report.failed[topics.TRANSACTIONS] == 500 and report.failed[topics.LABELS] == 500
    assert "failed 500" in report.summary()
    assert messages  # the failure was said as it happened

    env = dict(kafka.env, STREAMGUARD_KAFKA_BOOTSTRAP=f"localhost:{free_port()}")
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamguard.cli.main",
            "generate",
            "batch",
            "-n",
            "100",
            "--delivery-timeout-s",
            "3",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "stopped: delivery failed" in result.stdout
    assert "failed 100" in " ".join(result.stdout.split())
