"""The account-keyed topics must be co-partitioned: the same key on the same partition number.

Producers hash the key with murmur2 (kafka/client.py: PARTITIONER, the Java client's and Flink's
choice) modulo the partition count, so the counts must be equal too. Then the range assignor
gives one decision instance both an account's transactions and its alerts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka.admin import ClusterMetadata

from streamguard.kafka import topics

#: The topics the decision service reads, with one partition count: transactions and alerts are
#: keyed by account_id; labels need not be (nothing joins them), but the range assignor then
#: gives every instance the same partition numbers of each of the three.
ACCOUNT_KEYED = (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS)


class CopartitionError(RuntimeError):
    """The account-keyed topics have different partition counts (a configuration error)."""


def check_copartitioned(counts: Mapping[str, int], names: Sequence[str] = ACCOUNT_KEYED) -> int:
    """The shared partition count of `names`; raise CopartitionError naming each count if not."""
    missing = [name for name in names if name not in counts]
    if missing:
        raise CopartitionError(f"topic(s) {', '.join(missing)} do not exist")
    found = {name: counts[name] for name in names}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{name}={count}" for name, count in found.items())
        raise CopartitionError(
            f"the account-keyed topics must have equal partition counts, found {listed}. "
            "An account's transactions and alerts must land on the same partition number so "
            "that one decision instance owns both: add partitions to the smaller topics "
            "(kafka-topics --alter --partitions N) or recreate them with one count "
            "(STREAMGUARD_TRANSACTIONS_PARTITIONS and STREAMGUARD_ALERTS_PARTITIONS)."
        )
    return next(iter(found.values()))


def partition_counts(metadata: ClusterMetadata) -> dict[str, int]:
    """{topic: partition count} from a confluent-kafka ClusterMetadata."""
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}
