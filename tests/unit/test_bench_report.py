"""The report's pure parts: perf-tool output, COPY text, interpolation, lag, limits, targets."""

from __future__ import annotations

from array import array
from dataclasses import replace

import pytest

from streamguard.bench import report
from streamguard.bench.collect import Collected
from streamguard.bench.limits_parse import (
    PerfOutputError,
    copy_line,
    parse_consumer_performance,
    parse_producer_performance,
)
from streamguard.bench.probes import ProgressSample

PRODUCER_OUTPUT = """\
112492 records sent, 22444.5 records/sec (8.56 MB/sec), 1863.0 ms avg latency, 2236.0 ms max \
latency.
200000 records sent, 34305.3 records/sec (13.09 MB/sec), 2040.85 ms avg latency, 2462.00 ms max \
latency, 2113 ms 50th, 2431 ms 95th, 2453 ms 99th, 2462 ms 99.9th.
"""

CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-29 20:23:54:328, 2026-11-29 20:23:59:654, 76.2939, 14.3248, 200000, 37551.6335, 3006, \
2320, 32.8853, 86206.8966
"""


def test_producer_summary_is_the_last_line() -> None:
    limit = parse_producer_performance(PRODUCER_OUTPUT)
    assert limit.records == 200000
    assert limit.records_per_s == 34305.3
    assert (limit.p50_ms, limit.p99_ms, limit.max_ms) == (2113, 2453, 2462)
    with pytest.raises(PerfOutputError):
        parse_producer_performance("Exception in thread main")


def test_consumer_csv_row() -> None:
    limit = parse_consumer_performance("some log line\n" + CONSUMER_OUTPUT)
    assert limit.records == 200000
    assert limit.records_per_s == pytest.approx(37551.6335)
    assert limit.fetch_records_per_s == pytest.approx(86206.8966)
    with pytest.raises(PerfOutputError):
        parse_consumer_performance("WARN no data")


def test_copy_line_escapes_and_nulls() -> None:
    assert (
        copy_line(["a\tb", None, 3, "back\\slash\nline"]) == "a\\tb\t\\N\t3\tback\\\\slash\\nline\n"
    )


def _samples() -> list[ProgressSample]:
    # 1,000 tx/s produced; decide keeps up 200 behind; the rules job commits every 2 s and
    # falls further behind each time
    return [
        ProgressSample(
            at_s=100.0 + t,
            produced=1000 * t,
            alerts_produced=10 * t,
            committed={
                "streamguard-decide": max(0, 1000 * t - 200),
                "streamguard-rules": 500 * (t - t % 2),
            },
            resources={"kafka": (50.0 + t, 400.0)},
        )
        for t in range(11)
    ]


def test_value_at_interpolates_and_clamps() -> None:
    samples = _samples()
    assert report.value_at(samples, 102.5) == 2500
    assert report.value_at(samples, 50) == 0
    assert report.value_at(samples, 500) == 10000


def test_lag_trends_tell_keeping_up_from_falling_behind() -> None:
    lags = report.lag_trends(_samples(), (101.0, 110.0), offered_per_s=1000)
    assert lags["streamguard-decide"]["sustained"]
    assert lags["streamguard-decide"]["end"] == 200
    assert not lags["streamguard-rules"]["sustained"]
    assert lags["streamguard-rules"]["coarse"]


def test_the_rules_lag_is_live_when_its_metrics_gave_every_sample() -> None:
    samples = [replace(s, rules_live=True) for s in _samples()]
    samples = [
        replace(s, committed={**s.committed, "streamguard-rules": int(s.produced) - 300})
        for s in samples
    ]
    lags = report.lag_trends(samples, (101.0, 110.0), offered_per_s=1000)
    assert not lags["streamguard-rules"]["coarse"]  # every sample counts, not just new commits
    assert lags["streamguard-rules"]["sustained"]
    assert lags["streamguard-rules"]["end"] == 300
    # a sample without a live figure (its REST call timed out) is skipped, not mixed in: the
    # checkpointed offset it holds would pass for a lag of thousands
    samples[4] = replace(
        samples[4], rules_live=False, committed={**samples[4].committed, "streamguard-rules": 0}
    )
    lags = report.lag_trends(samples, (101.0, 110.0), offered_per_s=1000)
    assert not lags["streamguard-rules"]["coarse"]
    assert lags["streamguard-rules"]["max"] == 300
    # with no live figure at all, the checkpointed offsets are all there is: coarse
    coarse = [replace(s, rules_live=False) for s in samples]
    assert report.lag_trends(coarse, (101.0, 110.0), offered_per_s=1000)["streamguard-rules"][
        "coarse"
    ]


def test_resources_over_the_window_only() -> None:
    use = report.resources(_samples(), (105.0, 106.0))
    assert use["kafka"]["cpu_mean_pct"] == 55.5
    assert use["kafka"]["rss_max_mb"] == 400.0


def _step(
    rate: int = 5000, p99: float = 800.0, recall: float = 1.0, judge_coarse: bool = False
) -> dict:
    data = Collected(
        latencies={
            "total_to_decision": array("d", [100.0] * 98 + [p99, p99]),
            "total_to_decision_alerted": array("d", [300.0, 1500.0]),
        },
        interesting=[("h1", "A"), ("l1", "B")],
        labels={"h1": ("high_amount", True)},
        alerts={"h1": frozenset({"HIGH_AMOUNT"})} if recall == 1.0 else {},
        transactions=100,
    )
    data.quiet_legit = 98
    return report.step(
        rate=rate,
        window=(101.0, 110.0),
        samples=_samples(),
        data=data,
        decisions=True,
        series={"stored": {100: 5, 101: 7}},
        counts={"stored": 9000, "decided": 8999, "decisions": 9},
        drained=True,
        rules=["HIGH_AMOUNT"],
        judge_coarse=judge_coarse,
    )


def test_step_throughput_and_quality() -> None:
    step = _step()
    assert step["throughput"]["offered_per_s"] == 1000.0
    assert step["throughput"]["stored_per_s"] == 1000.0
    assert step["throughput"]["decisions_per_s"] == 1.0
    assert step["throughput"]["sustained"]  # decide keeps up; the rules' lag is too coarse
    # over a window of several checkpoints, the rules job's growing lag counts
    assert not _step(judge_coarse=True)["throughput"]["sustained"]
    assert step["quality"]["per_scenario"]["high_amount"]["recall"] == 1.0
    assert step["quality"]["overall"]["transactions"] == 100
    assert step["series"]["per_second"]["stored"][:2] == [5, 7]


def test_targets_and_limits() -> None:
    steps = [_step(5000, p99=800.0), _step(20000, p99=3000.0, recall=0.0)]
    result = report.assemble(
        started=__import__("datetime").datetime(2026, 1, 1),
        machine={},
        settings={},
        plan={},
        limits={"kafka_produce": {"records_per_s": 4000.0}, "postgres_copy": {"error": "x"}},
        steps=steps,
    )
    targets = result["targets"]
    assert targets["p99_event_to_decision_at_5000"]["met"]
    assert not targets["p99_event_to_decision_at_5000"]["met_alerted_only"]
    assert not targets["sustained_throughput"]["met"]  # 1,000/s sustained is short of 20,000
    assert targets["recall_deterministic_scenarios"]["high_amount"]["transaction_recall"] == 0.0
    assert not targets["recall_deterministic_scenarios"]["high_amount"]["met"]
    assert result["steps"][0]["vs_limits"]["kafka_produce"] == 0.25
    assert result["steps"][0]["vs_limits"]["postgres_copy"] is None


def test_limited_by_names_the_generator_and_growing_lags() -> None:
    lags = report.lag_trends(_samples(), (101.0, 110.0), offered_per_s=1000)
    found = report.limited_by(5000, 1000.0, lags)
    assert found[0].startswith("generator (1,000 of 5,000")
    assert any(item.startswith("streamguard-rules") for item in found)
    assert not any(item.startswith("streamguard-decide") for item in found)
    assert report.limited_by(1000, 990.0, {}) == []


def test_checkpoint_saw_tooth_is_not_a_trend() -> None:
    # a job that keeps up but commits every 5 s: lag climbs between commits, drops at each
    samples = [
        ProgressSample(
            at_s=float(t),
            produced=1000 * t,
            alerts_produced=0,
            committed={"streamguard-rules": 1000 * (t - t % 5)},
        )
        for t in range(0, 33)
    ]
    points = report.lag_points(samples, "streamguard-rules", 0.0, coarse=True)
    assert [x for x, _ in points] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    assert all(lag == 0 for _, lag in points)
    assert report.lag_trends(samples, (0.0, 32.0), 1000)["streamguard-rules"]["sustained"]


def test_rules_job_restarts_during_the_step() -> None:
    samples = [
        ProgressSample(0.0, 0, 0, rules_state="RUNNING", rules_restarts=0),
        ProgressSample(1.0, 0, 0),  # the REST API did not answer (a long GC pause)
        ProgressSample(2.0, 0, 0, rules_state="RESTARTING", rules_restarts=2),
        ProgressSample(3.0, 0, 0, rules_state="RUNNING", rules_restarts=2),
    ]
    job = report.rules_job(samples)
    assert job == {
        "restarts": 2,
        "states_seen": ["NO ANSWER", "RESTARTING", "RUNNING"],
        "unanswered_samples": 1,
    }


def test_cpu_per_transaction_of_each_component_and_the_pipeline() -> None:
    use = {
        "generator": {"cpu_mean_pct": 20.0},
        "kafka": {"cpu_mean_pct": 25.0},
        "rules": {"cpu_mean_pct": 50.0},
        "machine": {"cpu_mean_pct": 190.0},
        "outside": {"cpu_mean_pct": 5.0},
    }
    per_tx = report.cpu_per_tx(use, offered_per_s=5000.0)
    # 50% of a core for 5,000 tx/s is 0.5 s of CPU a second over 5,000: 100 µs each
    assert per_tx["rules"] == 100.0
    assert per_tx["generator"] == 40.0
    # the pipeline leaves out the load generator and the machine-wide figures
    assert per_tx["pipeline"] == 150.0
    assert report.cpu_per_tx(use, offered_per_s=0.0) == {}
    assert _step()["cpu_us_per_tx"]["pipeline"] > 0


def test_cpu_and_transaction_recall_targets() -> None:
    fast = _step(20000)
    fast["cpu_us_per_tx"] = {"pipeline": 80.0}
    slow = _step(20000)
    slow["cpu_us_per_tx"] = {"pipeline": 240.0}
    assert report.targets([fast])["cpu_per_tx_at_20000"]["met"]
    assert not report.targets([slow])["cpu_per_tx_at_20000"]["met"]
    assert report.targets([_step(5000)])["cpu_per_tx_at_20000"]["met"] is None
    # cheap per offered transaction, but it fell behind: not a cost per transaction handled
    behind = _step(20000)
    behind["cpu_us_per_tx"] = {"pipeline": 80.0}
    behind["throughput"]["sustained"] = False
    assert report.targets([behind])["cpu_per_tx_at_20000"]["met"] is False
    # every incident caught but too few of its transactions: the velocity target is not met
    step = _step(5000)
    step["quality"]["per_scenario"]["velocity_burst"] = {"recall": 0.6, "incident_recall": 1.0}
    recalls = report.targets([step])["recall_deterministic_scenarios"]
    assert not recalls["velocity_burst"]["met"]
    assert recalls["velocity_burst"]["transaction_recall_target"] == 0.95
    step["quality"]["per_scenario"]["velocity_burst"]["recall"] = 0.96
    assert report.targets([step])["recall_deterministic_scenarios"]["velocity_burst"]["met"]
