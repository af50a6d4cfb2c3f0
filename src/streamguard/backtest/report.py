"""The backtest's result as one self-contained HTML page: inline CSS and SVG, no request.

`render` is pure: the result dict of `backtest.run.backtest` in, an HTML string out. Every
value from the data reaches the page through Jinja2's autoescape (a rule or transaction id
could hold markup); the wording, the numbers' format and the charts' geometry are decided
here, so the template only places them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from streamguard.backtest.charts import grouped_bars
from streamguard.domain.backtest import ACTIONS, CASE_ACTIONS

TEMPLATES = Path(__file__).with_name("templates")
#: The changed verdicts shown; the count of all of them is stated above the table.
MAX_CHANGES = 500
CATALOGS = ("live", "candidate")
OVERALL = "ALL (cases)"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


def render(result: dict[str, Any]) -> str:
    """The HTML report of a backtest result."""
    return env.get_template("report.html").render(**context(result))


def context(result: dict[str, Any], *, all_in: str = "--out/--json") -> dict[str, Any]:
    """What the template shows, formatted: totals, rule rows, charts and changed verdicts;
    `all_in` says where the changed verdicts past the first MAX_CHANGES are."""
    summaries = {name: result["catalogs"][name] for name in CATALOGS}
    days = sorted({d for s in summaries.values() for d in s["cases_per_day"]})
    changes = result["changes"]
    return {
        "period": result["period"],
        "totals": [
            ("transactions", _count(result["transactions"])),
            ("known fraud", _count(result["known_fraud"])),
            ("changed verdicts", _count(len(changes))),
            ("replay", f"{result['seconds']['replay']} s"),
            ("replay rate", f"{_count(result['replay_tx_per_s'] or 0)} tx/s"),
        ],
        "rows": rule_rows(summaries),
        "actions": grouped_bars(
            ACTIONS, {name: [s["actions"][a] for a in ACTIONS] for name, s in summaries.items()}
        ),
        "load": grouped_bars(
            days,
            {name: [s["cases_per_day"].get(d, 0) for d in days] for name, s in summaries.items()},
        ),
        "changes": [
            {
                **change,
                "added_rules": ", ".join(change["added_rules"]),
                "removed_rules": ", ".join(change["removed_rules"]),
            }
            for change in changes[:MAX_CHANGES]
        ],
        "changes_note": (
            f"all {len(changes):,}"
            if len(changes) <= MAX_CHANGES
            else f"the first {MAX_CHANGES:,} of {len(changes):,} (all in {all_in})"
        ),
    }


def rule_rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per rule of either catalog, then the catalogs' cases: counts and P/R/F1."""
    rules = sorted({r for s in summaries.values() for r in s["alerts_per_rule"]})
    rows = []
    for rule in [*rules, OVERALL]:
        row: dict[str, Any] = {"rule": rule, "overall": rule == OVERALL}
        for name, summary in summaries.items():
            if rule == OVERALL:
                quality = summary["quality"]["overall"]
                count = sum(summary["actions"][a] for a in CASE_ACTIONS)
            else:
                quality = summary["quality"]["per_rule"].get(rule, {})
                count = summary["alerts_per_rule"].get(rule, 0)
            row[name] = {
                "alerts": _count(count),
                **{key: _ratio(quality.get(key)) for key in ("precision", "recall", "f1")},
            }
        rows.append(row)
    return rows


def _count(value: int) -> str:
    return f"{value:,}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
