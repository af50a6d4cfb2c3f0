"""Producer and consumer settings in one place, over confluent-kafka."""

from __future__ import annotations

from typing import Any

from streamguard.config import Settings

#: The Java client's partitioner (and so Flink's Kafka sink's): murmur2 of the key. librdkafka's
#: default is CRC32, which would put an account's transactions and its alerts on different
#: partition numbers, and then two decision instances would each hold half of the evidence.
PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """An idempotent producer that waits for every replica and partitions keys like Java does."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 120_000,
        "partitioner": PARTITIONER,
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits nothing by itself: the caller stores offsets with its results.

    The range assignor gives each member the same partition numbers of every topic it reads, so
    with co-partitioned topics one member owns an account's transactions and its alerts.
    """
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "range",
        "fetch.min.bytes": settings.kafka_fetch_min_bytes,
        "fetch.wait.max.ms": settings.kafka_fetch_wait_ms,
        **overrides,
    }
