"""The backtest's HTML report: its numbers, its escaping, no external request, the bars' sizes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from streamguard.backtest.charts import grouped_bars
from streamguard.backtest.report import MAX_CHANGES, render

EVIL = "<script>alert(1)</script>"


def quality(precision: float | None, recall: float | None, f1: float | None) -> dict[str, Any]:
    return {"precision": precision, "recall": recall, "f1": f1}


def result(changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A small hand-made result: HIGH_AMOUNT raised, a new rule named to inject markup."""
    return {
        "period": {"from": "2026-11-02T14:59:00+00:00", "to": "2026-11-02T15:01:00+00:00"},
        "transactions": 12345,
        "known_fraud": 3,
        "catalogs": {
            "live": {
                "alerts_per_rule": {"HIGH_AMOUNT": 5},
                "actions": {"APPROVE": 12340, "REVIEW": 4, "BLOCK": 1},
                "quality": {
                    "overall": quality(0.75, 1.0, 0.8571),
                    "per_rule": {"HIGH_AMOUNT": quality(0.75, 1.0, 0.8571)},
                },
                "cases_per_day": {"2026-11-02": 5},
                "cases": {},
            },
            "candidate": {
                "alerts_per_rule": {"HIGH_AMOUNT": 1, EVIL: 2},
                "actions": {"APPROVE": 12343, "REVIEW": 1, "BLOCK": 1},
                "quality": {
                    "overall": quality(1.0, 0.3333, 0.5),
                    "per_rule": {
                        "HIGH_AMOUNT": quality(1.0, 0.3333, 0.5),
                        EVIL: quality(None, 0.0, None),
                    },
                },
                "cases_per_day": {"2026-11-02": 2},
                "cases": {},
            },
        },
        "changes": changes
        if changes is not None
        else [
            {
                "transaction_id": f"TX-{EVIL}",
                "event_time": "2026-11-02T15:00:00+00:00",
                "live_action": "REVIEW",
                "candidate_action": "APPROVE",
                "added_rules": [],
                "removed_rules": ["HIGH_AMOUNT"],
            }
        ],
        "seconds": {"replay": 41.5, "total": 44.0},
        "replay_tx_per_s": 297,
    }


def cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", html)


def test_the_report_holds_the_period_totals_rules_cases_and_changes() -> None:
    html = render(result())
    assert "2026-11-02T14:59:00+00:00" in html and "2026-11-02T15:01:00+00:00" in html
    assert "12,345" in html  # transactions
    row = cells(html.split("HIGH_AMOUNT</td>", 1)[1])[:8]
    assert row == ["5", "75.0%", "100.0%", "85.7%", "1", "100.0%", "33.3%", "50.0%"]
    overall = cells(html.split("ALL (cases)</td>", 1)[1])[:8]
    assert overall == ["5", "75.0%", "100.0%", "85.7%", "2", "100.0%", "33.3%", "50.0%"]
    assert "Changed verdicts (all 1)" in html
    assert "removed_rules" not in html and ">HIGH_AMOUNT</td></tr>" in html
    # the action chart carries each count once per catalog, live first
    assert re.findall(r'<rect class="(\w+)"[^>]*><title>APPROVE, \w+: ([\d,]+)', html) == [
        ("live", "12,340"),
        ("candidate", "12,343"),
    ]
    assert re.findall(r"<title>2026-11-02, (\w+): (\d+)</title>", html) == [
        ("live", "5"),
        ("candidate", "2"),
    ]


def test_markup_in_a_rule_id_or_a_transaction_id_comes_out_as_text() -> None:
    html = render(result())
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html  # the rule row
    assert "TX-&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html  # the changed verdict


def test_the_report_makes_no_external_request() -> None:
    html = render(result())
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html)
    assert "@import" not in html and "url(" not in html
    assert "<svg" in html and "<style>" in html  # the charts and the style are inline


def test_past_the_limit_only_the_first_changes_are_listed_with_the_count_stated() -> None:
    one = result()["changes"][0]
    many = [{**one, "transaction_id": f"TX-{i:04d}"} for i in range(MAX_CHANGES + 20)]
    html = render(result(many))
    assert f"the first {MAX_CHANGES} of {MAX_CHANGES + 20:,}" in html
    assert f"TX-{MAX_CHANGES - 1:04d}<" in html
    assert f"TX-{MAX_CHANGES:04d}<" not in html


def test_bar_heights_are_proportional_to_the_values_on_one_baseline() -> None:
    chart = grouped_bars(["a", "b"], {"live": [100, 50], "candidate": [25, 0]}, height=240)
    plot_h = chart.baseline - min(bar.y for bar in chart.bars)
    heights = {(bar.group, bar.series): bar.height for bar in chart.bars}
    assert heights[("a", "live")] == pytest.approx(plot_h)  # the largest fills the plot
    assert heights[("b", "live")] == pytest.approx(plot_h / 2)
    assert heights[("a", "candidate")] == pytest.approx(plot_h / 4)
    assert heights[("b", "candidate")] == 0
    assert all(bar.y + bar.height == pytest.approx(chart.baseline) for bar in chart.bars)
    # side by side, never overlapping, groups left to right
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs)
    assert all(
        a.x + a.width <= b.x + 1e-9 for a, b in zip(chart.bars, chart.bars[1:], strict=False)
    )


def test_an_empty_or_all_zero_chart_draws_flat_bars_and_no_error() -> None:
    assert grouped_bars([], {"live": [], "candidate": []}).bars == ()
    flat = grouped_bars(["x"], {"live": [0], "candidate": [0]})
    assert [bar.height for bar in flat.bars] == [0, 0]


def test_many_days_keep_at_most_a_dozen_labels() -> None:
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    chart = grouped_bars(days, {"live": [1] * 30})
    assert len(chart.bars) == 30
    assert 1 < len(chart.labels) <= 12
    assert chart.labels[0].text == days[0]
