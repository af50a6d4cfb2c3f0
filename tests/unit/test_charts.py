"""The overview's chart buckets: alignment, the range's starts, per-second rates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streamguard.domain.charts import RANGES, bucket_start, bucket_starts, series

NOW = datetime(2026, 12, 3, 12, 7, 45, tzinfo=timezone.utc)


def test_buckets_align_to_the_epoch_and_the_newest_holds_now() -> None:
    assert bucket_start(NOW, timedelta(minutes=15)) == NOW.replace(minute=0, second=0)
    assert bucket_start(NOW, timedelta(seconds=30)) == NOW.replace(second=30)
    for chart in RANGES.values():
        starts = bucket_starts(chart, NOW)
        assert len(starts) == chart.buckets
        assert starts[-1] <= NOW < starts[-1] + chart.width
        assert starts[-1] - starts[0] == chart.span - chart.width
    assert [r.buckets for r in RANGES.values()] == [30, 60, 96]


def test_series_are_per_second_rates_with_zeros_and_the_running_bucket_by_its_elapsed_part() -> (
    None
):
    chart = RANGES["1h"]
    starts = bucket_starts(chart, NOW)
    counts = {"tx": {starts[0]: 600, starts[-1]: 90}, "alerts": {}}
    shown = series(chart, NOW, counts)
    assert shown.width_s == 60.0 and len(shown.starts) == 60
    assert shown.lines["tx"][0] == 10.0  # 600 in a minute
    assert shown.lines["tx"][1] == 0.0
    assert shown.lines["tx"][-1] == 2.0  # 90 in the 45 s of 12:07 so far
    assert shown.lines["alerts"] == [0.0] * 60
    assert shown.starts[-1] == int(starts[-1].timestamp())


def test_precision_is_fraud_over_judged_and_unknown_when_nothing_was_judged() -> None:
    from streamguard.domain.rule_quality import Precision, from_resolutions, sparkline

    assert from_resolutions(3, 1, 0).value == 0.75
    assert from_resolutions(0, 0, 0).value is None
    assert Precision(0, 4).value == 0.0
    points = sparkline([0, 5, 10]).split()
    assert points[0] == "0.0,26.0" and points[-1] == "160.0,2.0"
    assert sparkline([]) == ""
