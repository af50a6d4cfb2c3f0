"""Co-partitioning against the real Java client: a key gets the same partition from StreamGuard's
Python producers as from Kafka's own Java producer (whose partitioner Flink's sink uses), and the
decision service refuses account-keyed topics of different partition counts."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.stack import runtime
from tests.integration.decideproc import start_service
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

PARTITIONS = 6
KEYS = [f"ACC-{i:05d}" for i in range(300)]


def _create(handle: StackHandle, *names: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": handle.settings.bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    )
    for future in futures.values():
        future.result(30)


def _partition_of_each_key(handle: StackHandle, topic: str) -> dict[str, int]:
    consumer = Consumer(
        {"bootstrap.servers": handle.settings.bootstrap_servers, "group.id": uuid.uuid4().hex}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    found: dict[str, int] = {}
    try:
        for _ in range(200):
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    found[(message.key() or b"").decode()] = message.partition() or 0
            if len(found) == len(KEYS):
                break
    finally:
        consumer.close()
    return found


def test_python_producers_partition_keys_like_the_java_client(
    infra: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    java_topic, python_topic = f"java-part-{run}", f"python-part-{run}"
    _create(infra, java_topic, python_topic)
    lines = tmp_path / "keyed.txt"
    lines.write_text("".join(f"{key}|v\n" for key in KEYS))
    with lines.open("rb") as stdin:
        subprocess.run(
            [
                runtime.java_executable(),
                "-Xmx128m",
                "-cp",
                runtime.kafka_classpath(infra.settings),
                "org.apache.kafka.tools.ConsoleProducer",
                "--bootstrap-server",
                infra.settings.bootstrap_servers,
                "--topic",
                java_topic,
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=|",
            ],
            stdin=stdin,
            check=True,
            capture_output=True,
            timeout=120,
        )
    producer = Producer(producer_config(infra.settings))
    for key in KEYS:
        producer.produce(python_topic, key=key, value=b"v")
    assert producer.flush(30) == 0
    java = _partition_of_each_key(infra, java_topic)
    python = _partition_of_each_key(infra, python_topic)
    assert len(java) == len(KEYS) and len(set(java.values())) == PARTITIONS
    assert python == java


def test_the_decision_service_refuses_topics_of_unequal_partition_counts(tmp_path: Path) -> None:
    # A Kafka of its own: the shared one must keep its equal counts for the other tests.
    with running_stack(only="kafka") as handle:
        admin = AdminClient({"bootstrap.servers": handle.settings.bootstrap_servers})
        for future in admin.create_partitions(
            [NewPartitions(topics.LABELS, handle.settings.transactions_partitions + 2)]
        ).values():
            future.result(30)
        log = tmp_path / "service.log"
        with log.open("wb") as out:
            process = start_service(handle, out)
            try:
                returncode = process.wait(120)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
    text = log.read_text()
    assert returncode == 2, text[-2000:]
    partitions = handle.settings.transactions_partitions
    assert f"transaction_labels={partitions + 2}" in text
    assert f"transactions={partitions}" in text
    assert "assigned" not in text
