"""The report as one readable PNG: throughput and lag, latency, resources, limits, quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LATENCY_STAGES = (
    "kafka_append",
    "decide_store",
    "rule_alert",
    "decision_commit",
    "total_to_decision",
    "total_to_decision_alerted",
)


def plot(report: dict[str, Any], path: Path) -> Path:
    """Draw the report into `path` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = report["steps"]
    fig, axes = plt.subplots(len(steps) + 1, 3, figsize=(18, 4.2 * (len(steps) + 1)), squeeze=False)
    for row, step in enumerate(steps):
        _throughput(axes[row][0], step)
        _latency(axes[row][1], step)
        _resources(axes[row][2], step)
    _limits(axes[-1][0], report)
    at_target = [s for s in steps if s["rate_target"] == 5000]
    _quality(axes[-1][1], (at_target or steps or [None])[0])
    _targets(axes[-1][2], report)
    fig.suptitle(
        f"streamguard bench — {report['machine']['cpus']} CPUs, {report['started_at'][:19]} UTC",
        fontsize=14,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _label(step: dict[str, Any]) -> str:
    rate = step["rate_target"]
    return f"{rate:,} tx/s" if rate else "flat out"


def _throughput(ax: Any, step: dict[str, Any]) -> None:
    series = step["series"]
    if not series:
        return
    start = series["start_s"]
    for name, counts in series["per_second"].items():
        ax.plot(range(len(counts)), counts, label=f"{name}/s", linewidth=1.2)
    window = step["window"]
    ax.axvspan(window["start_s"] - start, window["end_s"] - start, color="grey", alpha=0.12)
    lag_ax = ax.twinx()
    for sample_group in sorted({g for s in series["samples"] for g in s["committed"]}):
        points = [
            (s["at_s"] - start, s["produced"] - s["committed"][sample_group])
            for s in series["samples"]
            if sample_group in s["committed"]
        ]
        lag_ax.plot(*zip(*points, strict=False), linestyle=":", label=f"lag {sample_group}")
    lag_ax.set_ylabel("lag (messages)")
    lag_ax.legend(loc="upper right", fontsize=7)
    t = step["throughput"]
    ax.set_title(
        f"{_label(step)}: stored {t['stored_per_s']:,.0f}/s, "
        f"{'sustained' if t['sustained'] else 'NOT sustained'} (shaded: measured)"
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("per second")
    ax.legend(loc="upper left", fontsize=7)


def _latency(ax: Any, step: dict[str, Any]) -> None:
    stages = step["latency_ms"]["stages"]
    names = [n for n in LATENCY_STAGES if stages.get(n, {}).get("count")]
    for offset, (q, colour) in enumerate(
        (("p50_ms", "#4c72b0"), ("p95_ms", "#dd8452"), ("p99_ms", "#c44e52"))
    ):
        values = [stages[n][q] for n in names]
        ax.bar([i + offset * 0.27 for i in range(len(names))], values, 0.27, label=q, color=colour)
    ticks = [n.replace("total_to_", "total→").replace("_", "\n") for n in names]
    ax.set_xticks([i + 0.27 for i in range(len(names))], ticks, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.axhline(1000, color="black", linestyle="--", linewidth=0.8)
    ax.set_title(f"{_label(step)}: latency per stage")
    ax.legend(fontsize=7)


def _resources(ax: Any, step: dict[str, Any]) -> None:
    use = step["resources"]
    names = sorted(use)
    ax.bar(names, [use[n]["cpu_mean_pct"] for n in names], color="#55a868", label="CPU % mean")
    ax.set_ylabel("CPU % of one core")
    mem = ax.twinx()
    mem.plot(names, [use[n]["rss_max_mb"] for n in names], "o", color="#8172b2", label="RSS MB max")
    mem.set_ylabel("RSS MB")
    ax.set_title(f"{_label(step)}: CPU (bars) and peak memory (dots)")
    ax.tick_params(axis="x", labelsize=8)


def _limits(ax: Any, report: dict[str, Any]) -> None:
    raw = report["limits"]
    bars = {
        "Kafka produce": raw.get("kafka_produce", {}).get("records_per_s"),
        "Kafka consume": raw.get("kafka_consume", {}).get("fetch_records_per_s"),
        "PG COPY": raw.get("postgres_copy", {}).get("rows_per_s"),
    }
    for step in report["steps"]:
        bars[f"pipeline {_label(step)}"] = step["throughput"]["stored_per_s"]
    names = [n for n, v in bars.items() if v]
    ax.barh(names, [bars[n] for n in names], color=["#4c72b0"] * 3 + ["#c44e52"] * 10)
    for i, name in enumerate(names):
        ax.text(bars[name], i, f" {bars[name]:,.0f}/s", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_title("raw limits of this machine vs the pipeline (records/s, log)")


def _quality(ax: Any, step: dict[str, Any] | None) -> None:
    if step is None:
        return
    per_scenario = step["quality"]["per_scenario"]
    scenarios = {k: v for k, v in per_scenario.items() if v.get("recall") is not None}
    names = sorted(scenarios)
    tx = [scenarios[n]["recall"] for n in names]
    inc = [scenarios[n].get("incident_recall") or 0 for n in names]
    ax.bar([i - 0.2 for i in range(len(names))], tx, 0.4, label="recall (transactions)")
    ax.bar([i + 0.2 for i in range(len(names))], inc, 0.4, label="recall (incidents)")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    overall = step["quality"]["overall"]["by_pipeline"]
    ax.set_title(
        f"{_label(step)}: recall per scenario; overall precision {overall['precision']}, "
        f"recall {overall['recall']}",
        fontsize=9,
    )
    ax.legend(fontsize=7)


def _targets(ax: Any, report: dict[str, Any]) -> None:
    t = report["targets"]
    lines = [
        "Targets",
        f"sustained ≥ 20,000 tx/s: best {t['sustained_throughput']['best_sustained_stored_per_s']}"
        f" → {'met' if t['sustained_throughput']['met'] else 'NOT met'}",
        f"p99 event→decision < 1 s at 5,000 tx/s: {t['p99_event_to_decision_at_5000']['p99_ms']} ms"
        f" → {'met' if t['p99_event_to_decision_at_5000']['met'] else 'NOT met'}",
        f"  (alerted transactions only: {t['p99_event_to_decision_at_5000']['p99_ms_alerted_only']}"
        " ms)",
    ]
    for scenario, figures in t["recall_deterministic_scenarios"].items():
        lines.append(
            f"recall {scenario}: tx {figures['transaction_recall']}, "
            f"incidents {figures['incident_recall']}"
        )
    cpu = t.get("cpu_per_tx_at_20000", {})
    if cpu:
        lines.append(
            f"pipeline CPU < {cpu['target_us_per_tx']:.0f} µs/tx at 20,000 tx/s: "
            f"{cpu['pipeline_us_per_tx']} → {'met' if cpu['met'] else 'NOT met'}"
        )
    ax.axis("off")
    ax.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9)
