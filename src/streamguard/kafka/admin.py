"""What the console reads from Kafka: brokers, topics, offsets, consumer groups, messages.

A thin layer over confluent-kafka's AdminClient (created lazily, kept for the process) with
short timeouts: when the broker is down every call fails within `timeout_s` with
KafkaUnavailableError, so a page that asks still answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from streamguard.config import Settings
from streamguard.domain.pipeline import TopicPartition

#: The decision service's and the rules job's groups.
DECIDE_GROUP = "streamguard-decide"
RULES_GROUP = "streamguard-rules"


class KafkaUnavailableError(Exception):
    """The broker did not answer within the console's timeout."""


@dataclass(frozen=True)
class Broker:
    """One broker of the cluster."""

    node_id: int
    host: str
    port: int
    is_controller: bool


@dataclass(frozen=True)
class Topic:
    """A topic with its partition numbers and retention settings."""

    name: str
    partitions: list[int]
    retention_ms: int | None
    retention_bytes: int | None
    cleanup_policy: str | None


@dataclass(frozen=True)
class Group:
    """A consumer group as the broker knows it."""

    group_id: str
    state: str
    members: int


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class KafkaAdmin:
    """Read-only admin calls, each bounded by `timeout_s`."""

    def __init__(self, settings: Settings, timeout_s: float = 1.5) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    def _admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        with self._lock:
            if self._client is None:
                self._client = AdminClient(
                    {
                        "bootstrap.servers": self.settings.bootstrap_servers,
                        "socket.timeout.ms": int(self.timeout_s * 1000),
                        "socket.connection.setup.timeout.ms": int(self.timeout_s * 1000),
                        # the console polls; a down broker must not fill its log every 100 ms
                        "reconnect.backoff.max.ms": 5000,
                        "log_level": 3,
                    }
                )
            return self._client

    def _wait(self, future: Any) -> Any:
        from confluent_kafka import KafkaException

        try:
            return future.result(timeout=self.timeout_s + 0.5)
        except (KafkaException, TimeoutError) as exc:
            raise KafkaUnavailableError(str(exc) or exc.__class__.__name__) from exc
        except Exception as exc:  # concurrent.futures.TimeoutError on Python 3.10
            if exc.__class__.__name__ == "TimeoutError":
                raise KafkaUnavailableError("timed out") from exc
            raise

    def brokers(self) -> tuple[str | None, list[Broker]]:
        """The cluster id and its brokers (the controller marked)."""
        described = self._wait(self._admin().describe_cluster(request_timeout=self.timeout_s))
        controller = described.controller.id if described.controller is not None else None
        nodes = [
            Broker(node.id, node.host, node.port, node.id == controller)
            for node in sorted(described.nodes, key=lambda n: n.id)
        ]
        return described.cluster_id, nodes

    def topics(self, *, with_configs: bool = True) -> list[Topic]:
        """Every topic except Kafka's internal ones, with retention from its configuration
        (without `with_configs`, one metadata call: names and partitions only)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import ConfigResource, ResourceType

        try:
            metadata = self._admin().list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailableError(str(exc)) from exc
        names = sorted(name for name in metadata.topics if not name.startswith("__"))
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        configs: dict[str, dict[str, Any]] = {}
        if resources and with_configs:
            futures = self._admin().describe_configs(resources, request_timeout=self.timeout_s)
            for resource, future in futures.items():
                entries = self._wait(future)
                configs[resource.name] = {k: v.value for k, v in entries.items()}
        return [
            Topic(
                name,
                sorted(metadata.topics[name].partitions),
                _int(configs.get(name, {}).get("retention.ms")),
                _int(configs.get(name, {}).get("retention.bytes")),
                configs.get(name, {}).get("cleanup.policy"),
            )
            for name in names
        ]

    def offsets(
        self, partitions: list[TopicPartition], latest: bool = True
    ) -> dict[TopicPartition, int]:
        """The end (or, with `latest` false, the first) offset of each partition."""
        from confluent_kafka import TopicPartition as KafkaTopicPartition
        from confluent_kafka.admin import OffsetSpec

        if not partitions:
            return {}
        spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()
        request = {KafkaTopicPartition(t, p): spec for t, p in partitions}
        futures = self._admin().list_offsets(request, request_timeout=self.timeout_s)
        return {(tp.topic, tp.partition): self._wait(f).offset for tp, f in futures.items()}

    def groups(self) -> list[Group]:
        """Every consumer group with its state and member count."""
        listed = self._wait(self._admin().list_consumer_groups(request_timeout=self.timeout_s))
        ids = sorted(g.group_id for g in listed.valid)
        if not ids:
            return []
        futures = self._admin().describe_consumer_groups(ids, request_timeout=self.timeout_s)
        found = []
        for group_id in ids:
            described = self._wait(futures[group_id])
            state = getattr(described.state, "name", str(described.state))
            found.append(Group(group_id, state, len(described.members)))
        return found

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The offsets `group_id` committed to Kafka (none for a group that never committed)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        request = [ConsumerGroupTopicPartitions(group_id)]
        futures = self._admin().list_consumer_group_offsets(request, request_timeout=self.timeout_s)
        answer = self._wait(futures[group_id])
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in answer.topic_partitions or []
            if tp.offset >= 0
        }
