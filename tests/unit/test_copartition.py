"""The co-partitioning rule of the account-keyed topics, as pure logic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streamguard.config import Settings
from streamguard.kafka import topics
from streamguard.kafka.client import consumer_config, producer_config
from streamguard.kafka.copartition import CopartitionError, check_copartitioned


def test_equal_counts_give_the_shared_count() -> None:
    counts = {topics.TRANSACTIONS: 6, topics.FRAUD_ALERTS: 6, topics.LABELS: 6, "other": 1}
    assert check_copartitioned(counts) == 6


def test_unequal_counts_are_refused_naming_each_count() -> None:
    counts = {topics.TRANSACTIONS: 6, topics.FRAUD_ALERTS: 3, topics.LABELS: 6}
    with pytest.raises(CopartitionError, match="transactions=6, fraud_alerts=3"):
        check_copartitioned(counts)


def test_a_missing_topic_is_named() -> None:
    with pytest.raises(CopartitionError, match="fraud_alerts"):
        check_copartitioned({topics.TRANSACTIONS: 3, topics.LABELS: 3})


def test_settings_refuse_unequal_partition_settings() -> None:
    with pytest.raises(ValidationError, match="must be equal"):
        Settings(_env_file=None, transactions_partitions=6, alerts_partitions=3)  # type: ignore[call-arg]


def test_clients_partition_and_assign_like_java() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert producer_config(settings)["partitioner"] == "murmur2_random"
    assert consumer_config(settings, "g")["partition.assignment.strategy"] == "range"
