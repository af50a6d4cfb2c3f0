"""Event-time sanity (domain/event_time.py) and how the decision service's split applies it."""

from __future__ import annotations

import pytest

from streamguard.config import Settings
from streamguard.decide.parse import split
from streamguard.domain.event_time import AHEAD_OF_ARRIVAL, BEHIND_ARRIVAL, EventTimeBounds
from streamguard.kafka import topics
from streamguard.kafka.heartbeat import HEARTBEAT_KEY, HEARTBEAT_VALUE
from tests.factories import make_transaction
from tests.unit.test_decide import FakeMessage

ARRIVAL_MS = 1_796_000_000_000
BOUNDS = EventTimeBounds(max_future_skew_s=5, max_age_s=3600)


@pytest.mark.parametrize(
    ("ts_ms", "verdict"),
    [
        (ARRIVAL_MS, None),
        (ARRIVAL_MS + 5_000, None),  # the bound itself is believable
        (ARRIVAL_MS + 5_001, AHEAD_OF_ARRIVAL),
        (ARRIVAL_MS + 10 * 365 * 86_400_000, AHEAD_OF_ARRIVAL),
        (ARRIVAL_MS * 1000, AHEAD_OF_ARRIVAL),  # microseconds sent as milliseconds
        (ARRIVAL_MS - 3_600_000, None),
        (ARRIVAL_MS - 3_600_001, BEHIND_ARRIVAL),
        (ARRIVAL_MS // 1000, BEHIND_ARRIVAL),  # seconds sent as milliseconds
    ],
)
def test_bounds_judge_event_time_against_arrival(ts_ms: int, verdict: str | None) -> None:
    reason = BOUNDS.violation(ts_ms, ARRIVAL_MS)
    assert (reason.split(":")[0] if reason else None) == verdict
    assert BOUNDS.accepts(ts_ms, ARRIVAL_MS) is (verdict is None)


def test_without_an_append_time_nothing_is_judged() -> None:
    assert BOUNDS.violation(1, None) is None and BOUNDS.accepts(1, None)


def test_the_reason_says_how_far_and_names_the_setting() -> None:
    reason = BOUNDS.violation(ARRIVAL_MS + 12_500, ARRIVAL_MS)
    assert reason == (
        "event_time_ahead_of_arrival: event time is 12.500 s after Kafka appended it, "
        "more than STREAMGUARD_MAX_FUTURE_SKEW_S (5 s)"
    )


def test_settings_give_the_bounds_and_refuse_what_flink_cannot_take() -> None:
    settings = Settings(max_future_skew_s=2.5, max_event_age_s=60)
    assert settings.event_time_bounds == EventTimeBounds(2.5, 60)
    assert settings.event_time_bounds.max_future_skew_ms == 2500
    with pytest.raises(ValueError, match="max_age_s"):
        Settings(max_event_age_s=2**31)
    with pytest.raises(ValueError, match="max_future_skew_s"):
        Settings(max_future_skew_s=-1)


@pytest.mark.parametrize("ahead_ms", [5_001, 10 * 365 * 86_400_000])
def test_split_dead_letters_a_transaction_from_the_future(ahead_ms: int) -> None:
    tx = make_transaction(transaction_id="future", ts_ms=ARRIVAL_MS + ahead_ms)
    batch = split([FakeMessage(topics.TRANSACTIONS, tx.to_wire(), 3, ARRIVAL_MS)], BOUNDS)
    assert batch.transactions == []
    [dead] = batch.dead
    assert dead.reason.startswith(f"{AHEAD_OF_ARRIVAL}: event time is {ahead_ms / 1000:.3f} s")
    assert batch.offsets == {(topics.TRANSACTIONS, 0): 4}


def test_split_dead_letters_a_transaction_too_old_and_keeps_one_within_the_bound() -> None:
    old = make_transaction(transaction_id="old", ts_ms=ARRIVAL_MS - 3_600_001)
    late = make_transaction(transaction_id="late", ts_ms=ARRIVAL_MS - 3_600_000)
    batch = split(
        [
            FakeMessage(topics.TRANSACTIONS, old.to_wire(), 0, ARRIVAL_MS),
            FakeMessage(topics.TRANSACTIONS, late.to_wire(), 1, ARRIVAL_MS),
        ],
        BOUNDS,
    )
    assert [row.transaction_id for row in batch.transactions] == ["late"]
    assert [d.reason.split(":")[0] for d in batch.dead] == [BEHIND_ARRIVAL]


class KeyedMessage(FakeMessage):
    def __init__(self, key: bytes, value: bytes, offset: int) -> None:
        super().__init__(topics.TRANSACTIONS, value, offset, ARRIVAL_MS)
        self._key = key

    def key(self) -> bytes:
        return self._key


def test_split_skips_heartbeats_but_not_a_look_alike() -> None:
    batch = split(
        [
            KeyedMessage(HEARTBEAT_KEY, HEARTBEAT_VALUE, 0),
            KeyedMessage(HEARTBEAT_KEY, b'{"heartbeat":false}', 1),
            KeyedMessage(b"A1", HEARTBEAT_VALUE, 2),
        ],
        BOUNDS,
    )
    assert batch.transactions == []
    assert [d.offset for d in batch.dead] == [1, 2]
    assert batch.offsets == {(topics.TRANSACTIONS, 0): 3}


def test_the_watermark_delay_takes_fractions_of_a_second() -> None:
    from streamguard.rules.engine import watermark_interval

    assert watermark_interval(2) == "INTERVAL '2.000' SECOND"
    assert watermark_interval(0.5) == "INTERVAL '0.500' SECOND"
    assert Settings(watermark_delay_s=0.25).watermark_delay_s == 0.25
    with pytest.raises(ValueError):
        Settings(watermark_delay_s=-1)
