"""The pipeline's health in values: lag per partition, rates from two samples, what is down.

Pure functions over offsets and states read elsewhere (Kafka's admin API, the Flink REST API,
PostgreSQL's `consumer_offsets`), so the console's pipeline page and `/metrics` compute them
the same way and the unit tests need no broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

#: (topic, partition)
TopicPartition = tuple[str, int]


class Health(str, Enum):
    """A component as the console sees it."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PartitionLag:
    """One partition of one consumer: how far it is behind the end of the log."""

    topic: str
    partition: int
    end_offset: int | None
    position: int | None
    lag: int | None


def lag(end_offset: int | None, position: int | None) -> int | None:
    """Messages appended but not yet consumed; None when either side is unknown.

    A position past the end (a stale end offset read before the consumer's commit) is 0 lag.
    """
    if end_offset is None or position is None or end_offset < 0 or position < 0:
        return None
    return max(0, end_offset - position)


def lags(
    end_offsets: Mapping[TopicPartition, int],
    positions: Mapping[TopicPartition, int],
    topics: frozenset[str] | None = None,
) -> list[PartitionLag]:
    """The lag of every partition the consumer has a position on or should read.

    `topics` names the topics the consumer reads: their partitions without a position show
    with an unknown lag (nothing consumed yet), so a consumer that never started is visible;
    an empty partition (end offset 0) has nothing to consume, so no lag.
    """
    keys = set(positions)
    if topics is not None:
        keys |= {tp for tp in end_offsets if tp[0] in topics}
        keys = {tp for tp in keys if tp[0] in topics}
    return [
        PartitionLag(
            t,
            p,
            end_offsets.get((t, p)),
            positions.get((t, p)),
            lag(
                end_offsets.get((t, p)),
                positions.get((t, p), 0 if end_offsets.get((t, p)) == 0 else None),
            ),
        )
        for t, p in sorted(keys)
    ]


def total_lag(rows: list[PartitionLag]) -> int | None:
    """The sum of the known lags; None when none is known."""
    known = [row.lag for row in rows if row.lag is not None]
    return sum(known) if known else None


def rate_per_s(older: tuple[float, int] | None, newer: tuple[float, int] | None) -> float | None:
    """Messages per second between two (monotonic time s, count) samples; None without two.

    A count that went down (a topic recreated, a counter reset) gives None, not a negative rate.
    """
    if older is None or newer is None:
        return None
    span = newer[0] - older[0]
    if span <= 0 or newer[1] < older[1]:
        return None
    return (newer[1] - older[1]) / span


def flink_health(job_state: str | None) -> Health:
    """The rules job from its REST API's state: None means the API did not answer."""
    if job_state is None:
        return Health.DOWN
    if job_state == "RUNNING":
        return Health.UP
    if job_state in ("CREATED", "INITIALIZING", "RESTARTING", "RECONCILING"):
        return Health.DEGRADED
    return Health.DOWN


def retention_text(retention_ms: int | None) -> str:
    """A topic's retention.ms for a person: 7 d, 36 h, 15 min, forever (-1)."""
    if retention_ms is None:
        return "—"
    if retention_ms < 0:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if retention_ms >= size and retention_ms % size == 0:
            return f"{retention_ms // size} {unit}"
    return f"{retention_ms} ms"


def down_messages(kafka: Health, flink: Health, flink_state: str | None) -> list[str]:
    """What every page says when part of the pipeline is down (empty when all is well)."""
    said = []
    if kafka is Health.DOWN:
        said.append("Kafka is down (the broker does not answer): no new transactions arrive")
    if flink is Health.DOWN:
        detail = "its REST API does not answer" if flink_state is None else f"job {flink_state}"
        said.append(f"Flink is down ({detail}): no rule raises alerts")
    elif flink is Health.DEGRADED:
        said.append(f"The Flink rules job is {flink_state}: alerts may be late")
    return said


def read_range(
    low: int, high: int, limit: int, from_offset: int | None = None
) -> tuple[int, int] | None:
    """The offsets [start, stop) the browser reads from one partition holding [low, high).

    The newest `limit` messages, or the `limit` from `from_offset` on (clamped into the log).
    None when there is nothing to read.
    """
    if limit <= 0 or high <= low:
        return None
    start = max(low, high - limit) if from_offset is None else min(max(low, from_offset), high)
    stop = min(high, start + limit)
    return (start, stop) if stop > start else None
