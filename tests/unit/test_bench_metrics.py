"""The benchmark's pure figures: percentiles, rates, trends, ratios."""

from __future__ import annotations

import pytest

from streamguard.bench.metrics import (
    lag_trend,
    per_second_counts,
    percentile,
    rate_per_s,
    ratio,
    resource_use,
    slope,
    summarize,
)


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(values, 99) == pytest.approx(39.7)


def test_percentile_of_one_value_and_errors() -> None:
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_ignores_unknown_values_and_sorts() -> None:
    summary = summarize([5.0, None, 1.0, 3.0, None, 100.0])
    assert summary is not None
    assert summary.count == 4
    assert summary.max_ms == 100.0
    assert summary.p50_ms == pytest.approx(4.0)
    assert summary.mean_ms == pytest.approx(27.25)
    assert summary.p50_ms <= summary.p95_ms <= summary.p99_ms <= summary.max_ms


def test_summarize_of_nothing_is_none() -> None:
    assert summarize([]) is None
    assert summarize([None, None]) is None


def test_summary_as_dict_rounds() -> None:
    summary = summarize([1.234, 2.345])
    assert summary is not None
    assert summary.as_dict()["max_ms"] == 2.3
    assert summary.as_dict()["count"] == 2


def test_ratio_and_rate() -> None:
    assert ratio(5, 20) == 0.25
    assert ratio(None, 20) is None
    assert ratio(5, 0) is None
    assert rate_per_s(300, 60) == 5.0
    with pytest.raises(ValueError):
        rate_per_s(1, 0)


def test_per_second_counts_buckets_and_drops_outside() -> None:
    counts = per_second_counts([100.0, 100.5, 101.2, 102.9, 99.9, 103.0], 100.0, 103.0)
    assert counts == [2, 1, 1]


def test_slope_of_a_line_and_of_flat_data() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 4), (1, 4), (2, 4)]) == 0.0
    assert slope([(1, 4)]) == 0.0
    assert slope([(1, 4), (1, 9)]) == 0.0


def test_lag_trend_growing_lag_is_not_sustained() -> None:
    growing = [(float(t), 500.0 * t) for t in range(31)]
    trend = lag_trend(growing, offered_per_s=5000)
    assert trend is not None
    assert trend.growth_per_s == pytest.approx(500.0)
    assert not trend.sustained
    assert trend.max == 15000.0


def test_lag_trend_noisy_flat_lag_is_sustained() -> None:
    noisy = [(float(t), 800.0 + (200 if t % 2 else -200)) for t in range(20)]
    trend = lag_trend(noisy, offered_per_s=5000)
    assert trend is not None
    assert trend.sustained
    assert lag_trend([(0.0, 1.0)], 100) is None


def test_resource_use_means_and_peaks() -> None:
    use = resource_use([(50.0, 100.0), (150.0, 300.0)])
    assert use is not None
    assert (use.cpu_mean_pct, use.cpu_max_pct) == (100.0, 150.0)
    assert (use.rss_mean_mb, use.rss_max_mb) == (200.0, 300.0)
    assert resource_use([]) is None


def test_lag_trend_short_window_forgives_less_than_a_second_of_traffic() -> None:
    # 10 s at 300 tx/s: the lag grows 20/s (7% of the rate) but only 200 messages in all
    short = [(float(t), 20.0 * t) for t in range(11)]
    trend = lag_trend(short, offered_per_s=300)
    assert trend is not None and trend.sustained
    # the same growth over a minute is falling behind
    long = [(float(t), 20.0 * t) for t in range(61)]
    trend = lag_trend(long, offered_per_s=300)
    assert trend is not None and not trend.sustained
