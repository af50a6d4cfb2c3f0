"""`streamguard bench` end to end: a short, slow run on its own private stack gives sane figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard.stack.process import port_in_use
from tests.processes import processes_mentioning

pytestmark = pytest.mark.integration

RATE = 300
DURATION_S = 10


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    # small heaps and fast event time, as the other integration tests use; no checkpoint
    # during the run, so the rules job's lag can only come from its metrics
    env.update(
        STREAMGUARD_KAFKA_HEAP_MB="384",
        STREAMGUARD_FLINK_HEAP_MB="768",
        STREAMGUARD_CHECKPOINT_INTERVAL_S="600",
        STREAMGUARD_WATERMARK_DELAY_S="1",
        STREAMGUARD_IDLE_TIMEOUT_S="1",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamguard.cli.main",
            "bench",
            "--rate",
            str(RATE),
            "--duration",
            str(DURATION_S),
            "--warmup",
            "3",
            "--limit-records",
            "20000",
            "--copy-rows",
            "5000",
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = list(out.glob("bench-*.json"))
    assert len(reports) == 1, list(out.iterdir())
    return json.loads(reports[0].read_text()), out


def test_limits_are_measured(bench_report: tuple[dict, Path]) -> None:
    limits = bench_report[0]["limits"]
    assert limits["kafka_produce"]["records"] == 20000
    assert limits["kafka_produce"]["records_per_s"] > 1000
    assert limits["kafka_consume"]["records"] == 20000
    assert limits["kafka_consume"]["fetch_records_per_s"] > 1000
    assert limits["postgres_copy"]["rows_per_s"] > 1000


def test_throughput_keeps_up_with_a_slow_rate(bench_report: tuple[dict, Path]) -> None:
    step = bench_report[0]["steps"][0]
    throughput = step["throughput"]
    assert 0.8 * RATE <= throughput["offered_per_s"] <= 1.2 * RATE
    assert 0.8 * RATE <= throughput["stored_per_s"] <= 1.2 * RATE
    assert throughput["decided_per_s"] >= 0.8 * RATE
    assert throughput["drained"]
    assert throughput["sustained"]
    assert step["transactions_in_window"] >= 0.8 * RATE * DURATION_S
    assert step["rules_job"]["restarts"] == 0
    # the rules job's lag was read live from its sources' metrics, and it kept up
    assert throughput["lag"]["streamguard-rules"]["coarse"] is False
    assert throughput["lag"]["streamguard-rules"]["sustained"]
    assert "RUNNING" in step["rules_job"]["states_seen"]
    assert 0 < step["vs_limits"]["kafka_produce"] < 1


def test_latencies_cover_every_transaction_and_are_ordered(bench_report: tuple[dict, Path]) -> None:
    step = bench_report[0]["steps"][0]
    stages = step["latency_ms"]["stages"]
    for name in ("kafka_append", "decide_store", "total_to_decision"):
        assert stages[name]["count"] == step["transactions_in_window"], name
    for name in ("kafka_append", "decide_store", "total_to_decision", "rule_alert"):
        s = stages[name]
        assert 0 <= s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"] < 120_000, name
    # the total is at least the first stage, for the same transactions
    assert stages["total_to_decision"]["p50_ms"] >= stages["kafka_append"]["p50_ms"]
    assert step["latency_ms"]["rule_alert_by_rule"]["HIGH_AMOUNT"]["count"] > 0


def test_quality_and_resources_are_reported(bench_report: tuple[dict, Path]) -> None:
    step = bench_report[0]["steps"][0]
    overall = step["quality"]["overall"]
    # the window's transactions, but card tests whole: cashed out in the window, tests and all
    card_tests = step["quality"]["card_tests"]
    assert overall["transactions"] == (
        step["transactions_in_window"] + card_tests["looked_back"] - card_tests["left_out"]
    )
    # the generator's labels reached PostgreSQL and were matched with the alerts
    assert step["quality"]["labelled_fraud"] > 0
    assert overall["fraud"] == step["quality"]["labelled_fraud"]
    assert overall["by_pipeline"]["true_positives"] > 0
    assert step["quality"]["per_scenario"]["legit"]["transactions"] > 0
    assert step["quality"]["per_rule"]["HIGH_AMOUNT"]["alerts"] > 0
    resources = step["resources"]
    # every component works at 300 tx/s: a probe that reads nothing would say 0
    for component in ("kafka", "postgres", "rules", "decide-1", "generator"):
        assert resources[component]["rss_max_mb"] > 10, component
        assert 0 < resources[component]["cpu_mean_pct"] < 200, component  # two cores at most


def test_plot_is_written_and_the_stack_is_gone(bench_report: tuple[dict, Path]) -> None:
    report, out = bench_report
    plots = list(out.glob("bench-*.png"))
    assert len(plots) == 1
    assert plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots[0].stat().st_size > 20_000
    # The bench's own teardown checks that `down --wipe` left no data (private_stack._stop, or
    # the run exits 1); what it cannot see is a process left running without its port.
    settings = report["settings"]
    assert processes_mentioning(settings["state_dir"]) == []
    for port in (settings["kafka_port"], settings["pg_port"], settings["flink_ui_port"]):
        assert not port_in_use(port), port
