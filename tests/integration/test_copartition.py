"""Co-partitioning against the real Java client: a key gets the same partition from StreamGuard's
Python producers as from Kafka's own Java producer (whose partitioner Flink's sink uses), and the
decision service refuses account-keyed topics of different partition counts."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamguard.kafka.client import producer_config
from streamguard.stack import runtime
from tests.stackfixture import StackHandle

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
