"""Pure figures for the benchmark: percentiles, rates, trends and ratios. No I/O here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ascending values, interpolated linearly between ranks."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """How long a stage took, in milliseconds, over `count` transactions."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float | int]:
        """The summary as JSON-ready numbers, rounded to 0.1 ms."""
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(values_ms: Iterable[float | None]) -> LatencySummary | None:
    """p50/p95/p99/max/mean of the known values; None when there are none."""
    ordered = sorted(v for v in values_ms if v is not None)
    if not ordered:
        return None
    return LatencySummary(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1],
        mean_ms=sum(ordered) / len(ordered),
    )


def ratio(part: float | None, whole: float | None) -> float | None:
    """part / whole, or None when either is unknown or the whole is not positive."""
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole


def rate_per_s(count: int, seconds: float) -> float:
    """Events per second over a window."""
    if seconds <= 0:
        raise ValueError("a rate needs a window longer than zero seconds")
    return count / seconds


def per_second_counts(epoch_s: Iterable[float], start_s: float, end_s: float) -> list[int]:
    """How many instants fall in each whole second of [start_s, end_s)."""
    buckets = [0] * max(0, math.ceil(end_s - start_s))
    for moment in epoch_s:
        index = math.floor(moment - start_s)
        if 0 <= index < len(buckets):
            buckets[index] += 1
    return buckets


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var_x = sum((x - mean_x) ** 2 for x, _ in points)
    if var_x == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var_x


@dataclass(frozen=True)
class LagTrend:
    """Whether a consumer kept up: its lag's growth over the measured window."""

    growth_per_s: float
    start: float
    end: float
    max: float
    sustained: bool


#: Lag may grow by at most this share of the offered rate and still count as keeping up: a lag
#: that grows by 2% of the rate per second is noise from batching, 10% is falling behind.
LAG_GROWTH_TOLERANCE = 0.02
#: Over a short window, a lag that grows by less than this many seconds of traffic is noise.
LAG_GROWTH_FLOOR_S = 1.0


def lag_trend(samples: Sequence[tuple[float, float]], offered_per_s: float) -> LagTrend | None:
    """Fit the lag samples (time_s, messages behind); sustained when it does not grow.

    It grows when its fitted growth passes both 2% of the offered rate per second and one
    second of traffic over the whole window.
    """
    if len(samples) < 2:
        return None
    growth = slope(samples)
    lags = [lag for _, lag in samples]
    rate = max(offered_per_s, 1.0)
    span_s = max(samples[-1][0] - samples[0][0], 1.0)
    allowed = max(LAG_GROWTH_TOLERANCE * rate, LAG_GROWTH_FLOOR_S * rate / span_s)
    return LagTrend(
        growth_per_s=growth,
        start=lags[0],
        end=lags[-1],
        max=max(lags),
        sustained=growth <= allowed,
    )


@dataclass(frozen=True)
class ResourceUse:
    """CPU (percent of one core) and resident memory of one component over a window."""

    cpu_mean_pct: float
    cpu_max_pct: float
    rss_mean_mb: float
    rss_max_mb: float


def resource_use(samples: Sequence[tuple[float, float]]) -> ResourceUse | None:
    """Aggregate (cpu_pct, rss_mb) samples; None when there are none."""
    if not samples:
        return None
    cpus = [cpu for cpu, _ in samples]
    rss = [mb for _, mb in samples]
    return ResourceUse(
        cpu_mean_pct=sum(cpus) / len(cpus),
        cpu_max_pct=max(cpus),
        rss_mean_mb=sum(rss) / len(rss),
        rss_max_mb=max(rss),
    )
