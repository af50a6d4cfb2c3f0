"""The overview's charts in values: which time buckets a range has, and per-second rates in them.

A range (15 min, 1 h, 24 h) is cut into buckets of a fixed width aligned to the epoch, so the
same bucket has the same start in every read and a cache can keep the finished ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ChartRange:
    """A chart's span and the width of its buckets."""

    name: str
    span: timedelta
    width: timedelta

    @property
    def buckets(self) -> int:
        """How many buckets the range shows."""
        return int(self.span / self.width)


RANGES = {
    r.name: r
    for r in (
        ChartRange("15m", timedelta(minutes=15), timedelta(seconds=30)),
        ChartRange("1h", timedelta(hours=1), timedelta(minutes=1)),
        ChartRange("24h", timedelta(hours=24), timedelta(minutes=15)),
    )
}
DEFAULT_RANGE = "15m"


def bucket_start(moment: datetime, width: timedelta) -> datetime:
    """The start of the bucket holding `moment` (buckets aligned to the epoch)."""
    width_us = width // timedelta(microseconds=1)
    since_us = (moment - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=since_us - since_us % width_us)


def bucket_starts(chart: ChartRange, now: datetime) -> list[datetime]:
    """The starts of the range's buckets, oldest first; the newest holds `now` (in progress)."""
    newest = bucket_start(now, chart.width)
    return [newest - chart.width * i for i in range(chart.buckets - 1, -1, -1)]


@dataclass(frozen=True)
class Series:
    """A chart's data: bucket starts (epoch s) and per-second rates of each line."""

    range: str
    width_s: float
    starts: list[int]
    lines: dict[str, list[float]]


def series(
    chart: ChartRange,
    now: datetime,
    counts: Mapping[str, Mapping[datetime, int]],
) -> Series:
    """Per-second rates of each line in every bucket of the range (0 where nothing was counted).

    The newest bucket is still filling: its rate is over the part of it that has passed, so the
    line does not dip at its end.
    """
    starts = bucket_starts(chart, now)
    width_s = chart.width.total_seconds()
    elapsed_s = max(1.0, (now - starts[-1]).total_seconds())
    lines = {}
    for name, by_start in counts.items():
        values = [by_start.get(s, 0) / width_s for s in starts[:-1]]
        values.append(by_start.get(starts[-1], 0) / min(width_s, elapsed_s))
        lines[name] = [round(v, 3) for v in values]
    return Series(chart.name, width_s, [int((s - EPOCH).total_seconds()) for s in starts], lines)
