"""The pipeline page's pure logic: lag, rates, health, read windows, shown messages, filters."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from streamguard.console.filters import FilterError, browse_filter
from streamguard.domain.messages import pretty, shown
from streamguard.domain.pipeline import (
    Health,
    down_messages,
    flink_health,
    lag,
    lags,
    rate_per_s,
    read_range,
    retention_text,
    total_lag,
)

#: A Luhn-valid test card number (Visa's documented test PAN).
PAN = "4111111111111111"


def test_lag_is_the_end_minus_the_position_never_negative_and_unknown_when_a_side_is() -> None:
    assert lag(120, 100) == 20
    assert lag(100, 120) == 0  # an end offset read before the consumer's newest commit
    assert lag(None, 5) is None
    assert lag(5, None) is None
    assert lag(-1, 0) is None


def test_lags_list_every_partition_a_consumer_reads_even_without_a_position() -> None:
    ends = {("transactions", 0): 50, ("transactions", 1): 70, ("transactions", 2): 0}
    ends[("fraud_alerts", 0)] = 9
    positions = {("transactions", 0): 45}
    rows = lags(ends, positions, frozenset({"transactions"}))
    assert [(r.topic, r.partition, r.lag) for r in rows] == [
        ("transactions", 0, 5),
        ("transactions", 1, None),
        ("transactions", 2, 0),  # empty: nothing to consume
    ]
    assert total_lag(rows) == 5
    assert total_lag(lags({}, {("t", 0): 1})) is None


def test_a_rate_needs_two_samples_and_a_growing_count() -> None:
    assert rate_per_s((10.0, 100), (12.0, 160)) == 30.0
    assert rate_per_s(None, (12.0, 160)) is None
    assert rate_per_s((12.0, 100), (12.0, 160)) is None
    assert rate_per_s((10.0, 160), (12.0, 100)) is None  # a recreated topic, not -30/s


def test_flink_health_and_what_the_pages_say_when_something_is_down() -> None:
    assert flink_health("RUNNING") is Health.UP
    assert flink_health("RESTARTING") is Health.DEGRADED
    assert flink_health("FAILED") is Health.DOWN
    assert flink_health(None) is Health.DOWN
    assert down_messages(Health.UP, Health.UP, "RUNNING") == []
    said = down_messages(Health.DOWN, Health.DOWN, None)
    assert said[0].startswith("Kafka is down") and said[1].startswith("Flink is down")
    assert "job FAILED" in down_messages(Health.UP, Health.DOWN, "FAILED")[0]


def test_retention_reads_in_the_largest_whole_unit() -> None:
    assert retention_text(604_800_000) == "7 d"
    assert retention_text(129_600_000) == "36 h"
    assert retention_text(-1) == "forever"
    assert retention_text(1500) == "1500 ms"
    assert retention_text(None) == "—"


def test_read_range_takes_the_newest_or_from_an_offset_inside_the_log() -> None:
    assert read_range(0, 100, 20) == (80, 100)
    assert read_range(90, 100, 20) == (90, 100)
    assert read_range(0, 100, 20, from_offset=10) == (10, 30)
    assert read_range(50, 100, 20, from_offset=10) == (50, 70)  # before the first: clamped
    assert read_range(0, 100, 20, from_offset=100) is None
    assert read_range(5, 5, 20) is None


def test_a_shown_message_is_pretty_masked_text_with_its_headers() -> None:
    payload = json.dumps({"merchant_name": f"card {PAN}", "amount": 10.5}).encode()
    message = shown(
        "dead_letters",
        1,
        7,
        1_800_000_000_000,
        PAN.encode(),
        payload,
        [("reason", b"invalid_json"), ("service", None)],
    )
    assert PAN not in message.value and PAN not in (message.key or "")
    assert message.value.startswith("{\n") and message.is_json
    assert message.reason == "invalid_json"
    assert message.headers[1] == ("service", "")
    assert message.timestamp == datetime.fromtimestamp(1_800_000_000, tz=timezone.utc)
    assert pretty(b"not json <b>") == ("not json <b>", False)
    assert pretty(None) == ("(null)", False)


def test_browse_filter_refuses_what_cannot_be_read() -> None:
    wanted = browse_filter(topic="transactions", partition="1", offset="5", limit="3")
    assert (wanted.partition, wanted.from_offset, wanted.limit) == (1, 5, 3)
    assert browse_filter(topic="transactions").limit == 20
    for bad, reason in (
        ({"topic": ""}, "choose a topic"),
        ({"topic": "t", "offset": "5"}, "needs a partition"),
        ({"topic": "t", "limit": "0"}, "limit must be 1 or more"),
        ({"topic": "t", "limit": "201"}, "at most 200"),
        ({"topic": "t", "partition": "x"}, "not a whole number"),
        ({"topic": "t", "since": "yesterday"}, "ISO 8601"),
        ({"topic": "t", "partition": "0", "offset": "1", "since": "2026-12-01"}, "not both"),
    ):
        with pytest.raises(FilterError, match=reason):
            browse_filter(**bad)
