"""The fetch settings reach both consumers that StreamGuard makes: the decision service's and
the rules job's Kafka source."""

from __future__ import annotations

import pytest

from streamguard.config import Settings
from streamguard.kafka.client import consumer_config
from streamguard.rules.engine import Source


@pytest.mark.parametrize(("min_bytes", "wait_ms"), [(65_536, 100), (1, 500)])
def test_the_fetch_settings_reach_both_consumers(min_bytes: int, wait_ms: int) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, kafka_fetch_min_bytes=min_bytes, kafka_fetch_wait_ms=wait_ms
    )
    config = consumer_config(settings, "group")
    assert (config["fetch.min.bytes"], config["fetch.wait.max.ms"]) == (min_bytes, wait_ms)
    options = Source.kafka(settings).connector_options
    assert options["properties.fetch.min.bytes"] == str(min_bytes)
    assert options["properties.fetch.max.wait.ms"] == str(wait_ms)


def test_by_default_a_fetch_waits_for_64_kib_or_100_ms() -> None:
    config = consumer_config(Settings(_env_file=None), "group")  # type: ignore[call-arg]
    assert (config["fetch.min.bytes"], config["fetch.wait.max.ms"]) == (65_536, 100)
