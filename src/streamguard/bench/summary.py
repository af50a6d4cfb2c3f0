"""The report's headline figures as a terminal table: one column per load step."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from streamguard.bench.report import TARGET_RECALL_SCENARIOS


def _n(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _rows(step: dict[str, Any]) -> list[tuple[str, str]]:
    t = step["throughput"]
    stages = step["latency_ms"]["stages"]
    total = stages.get("total_to_decision", {})
    alerted = stages.get("total_to_decision_alerted", {})
    overall = step["quality"]["overall"]["by_pipeline"]
    ratios = step.get("vs_limits", {})
    use = step["resources"]
    per_tx = step.get("cpu_us_per_tx", {})
    return [
        ("offered tx/s", _n(t["offered_per_s"])),
        ("stored tx/s", _n(t["stored_per_s"])),
        ("decided tx/s", _n(t["decided_per_s"])),
        ("lag not growing", "yes" if t["sustained"] else "NO"),
        ("fell behind", ", ".join(t.get("limited_by", [])) or "-"),
        ("rules job restarts", str(step.get("rules_job", {}).get("restarts", "-"))),
        ("event→verdict p50 / p99 ms", f"{_n(total.get('p50_ms'))} / {_n(total.get('p99_ms'))}"),
        ("event→verdict max ms", _n(total.get("max_ms"))),
        ("alerted: event→decision p99 ms", _n(alerted.get("p99_ms"))),
        ("precision / recall", f"{overall['precision']} / {overall['recall']}"),
        *_recalls(step),
        *[
            (f"vs {name.replace('_', ' ')}", "-" if r is None else f"{r:.1%}")
            for name, r in ratios.items()
        ],
        *[(f"CPU % {name}", _n(figures["cpu_mean_pct"])) for name, figures in sorted(use.items())],
        *[(f"CPU µs/tx {name}", _n(us)) for name, us in sorted(per_tx.items()) if us is not None],
    ]


def _recalls(step: dict[str, Any]) -> list[tuple[str, str]]:
    """Recall by transaction and by incident of each scenario the targets judge."""
    per_scenario = step["quality"]["per_scenario"]
    rows = []
    for scenario in TARGET_RECALL_SCENARIOS:
        found = per_scenario.get(scenario)
        figures = "-" if found is None else f"{found['recall']} / {found['incident_recall']}"
        rows.append((f"{scenario} recall tx / incidents", figures))
    return rows


def summary_table(report: dict[str, Any]) -> Table:
    """Rows of headline figures, one column per step."""
    table = Table(title="streamguard bench")
    table.add_column("")
    columns = [dict(_rows(step)) for step in report["steps"]]
    for step in report["steps"]:
        rate = step["rate_target"]
        table.add_column(f"{rate:,} tx/s" if rate else "flat out", justify="right")
    names = list(dict.fromkeys(name for step in report["steps"] for name, _ in _rows(step)))
    for name in names:
        table.add_row(name, *[column.get(name, "-") for column in columns])
    return table
