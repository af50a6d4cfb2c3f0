"""The report's headline figures as a terminal table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def summary_table(report: dict[str, Any]) -> Table:
    """One row per step: rates, sustained, latency percentiles and recall."""
    table = Table(title="streamguard bench")
    for column in (
        "rate",
        "offered/s",
        "stored/s",
        "decided/s",
        "sustained",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99 alerted",
        "precision",
        "recall",
        "vs Kafka produce",
    ):
        table.add_column(column, justify="right")
    for step in report["steps"]:
        t = step["throughput"]
        stages = step["latency_ms"]["stages"]
        total = stages.get("total_to_decision") or stages.get("total_to_alert") or {}
        overall = step["quality"]["overall"]["by_pipeline"]
        ratio = step.get("vs_limits", {}).get("kafka_produce")
        table.add_row(
            _fmt(step["rate_target"]) if step["rate_target"] else "flat out",
            _fmt(t["offered_per_s"]),
            _fmt(t["stored_per_s"]),
            _fmt(t["decided_per_s"]),
            "yes" if t["sustained"] else "NO",
            _fmt(total.get("p50_ms")),
            _fmt(total.get("p99_ms")),
            _fmt(total.get("max_ms")),
            _fmt(stages.get("total_to_decision_alerted", {}).get("p99_ms")),
            str(overall["precision"]),
            str(overall["recall"]),
            "-" if ratio is None else f"{ratio:.1%}",
        )
    return table
