"""The backtest's comparison, its lists as they stood and its rules: pure values, no services."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from streamguard.backtest.alerts import Catalog, distinct_rules
from streamguard.backtest.lists import ListTimeline
from streamguard.domain.backtest import (
    CatalogRun,
    Change,
    actions_count,
    alerts_per_rule,
    cases_per_day,
    changes,
    per_rule_quality,
    quality,
    truth_from,
)
from streamguard.rules.catalog import load_rules
from streamguard.store.backtest_reads import ListChange

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)


def test_the_label_wins_over_the_resolution_and_unknowns_count_nowhere() -> None:
    truth = truth_from(
        {"a": True, "b": False},
        {"b": "CONFIRMED_FRAUD", "c": "CONFIRMED_FRAUD", "d": "FALSE_POSITIVE", "e": "LEGITIMATE"},
    )
    assert truth == {"a": True, "b": False, "c": True, "d": False, "e": False}
    # flagged: a (fraud), b (not), x (unknown); c is fraud and missed
    scored = quality({"a", "b", "x"}, truth)
    assert (scored.true_positives, scored.false_positives, scored.false_negatives) == (1, 1, 1)
    assert scored.precision == 0.5
    assert scored.recall == 0.5
    assert scored.f1 == 0.5


def test_ratios_are_none_when_undefined_never_zero() -> None:
    empty = quality(set(), {})
    assert (empty.precision, empty.recall, empty.f1) == (None, None, None)
    missed = quality(set(), {"a": True})
    assert (missed.precision, missed.recall, missed.f1) == (None, 0.0, None)


def test_changes_list_what_was_added_and_removed_in_the_given_order() -> None:
    live = CatalogRun(
        alerts={"t1": frozenset({"HIGH_AMOUNT"}), "t2": frozenset({"HIGH_AMOUNT"})},
        actions={"t1": "REVIEW", "t2": "REVIEW", "t4": "BLOCK"},
    )
    candidate = CatalogRun(
        alerts={"t2": frozenset({"HIGH_AMOUNT"}), "t3": frozenset({"NEW"})},
        actions={"t2": "BLOCK", "t3": "REVIEW", "t4": "BLOCK"},
    )
    found = changes(live, candidate, ["t4", "t3", "t2", "t1", "t0"])
    assert found == [
        Change("t3", "APPROVE", "REVIEW", ("NEW",), ()),
        Change("t2", "REVIEW", "BLOCK", (), ()),
        Change("t1", "REVIEW", "APPROVE", (), ("HIGH_AMOUNT",)),
    ]


def test_counts_per_rule_action_and_day() -> None:
    run = CatalogRun(
        alerts={"t1": frozenset({"A", "B"}), "t2": frozenset({"A"})},
        actions={"t1": "BLOCK", "t2": "REVIEW", "t3": "APPROVE"},
    )
    assert alerts_per_rule(run) == {"A": 2, "B": 1}
    assert actions_count(run, 10) == {"APPROVE": 8, "REVIEW": 1, "BLOCK": 1}
    days = {"t1": date(2026, 11, 2), "t2": date(2026, 11, 3), "t3": date(2026, 11, 3)}
    assert cases_per_day(run, days) == {"2026-11-02": 1, "2026-11-03": 1}
    per_rule = per_rule_quality(run, {"t1": True, "t2": False})
    assert (per_rule["A"].precision, per_rule["B"].precision) == (0.5, 1.0)


def _change(kind: str, value: str, minutes: int) -> ListChange:
    return ListChange(kind, "BLOCK", "ACCOUNT", value, "why", T0 + timedelta(minutes=minutes))


def test_the_lists_stand_as_their_audit_trail_says_at_each_moment() -> None:
    timeline = ListTimeline(
        [_change("ADD", "acc-1", 0), _change("ADD", "acc-2", 10), _change("REMOVE", "acc-1", 20)]
    )
    assert timeline.at(T0 - timedelta(seconds=1)).hits("acc-1") == ()
    assert [h.value for h in timeline.at(T0).hits("acc-1")] == ["acc-1"]
    assert timeline.at(T0 + timedelta(minutes=5)).hits("acc-2") == ()
    at_15 = timeline.at(T0 + timedelta(minutes=15))
    assert (len(at_15.hits("acc-1")), len(at_15.hits("acc-2"))) == (1, 1)
    at_25 = timeline.at(T0 + timedelta(minutes=25))
    assert (len(at_25.hits("acc-1")), len(at_25.hits("acc-2"))) == (0, 1)
    assert timeline.ever_listed("ACCOUNT") == {"acc-1", "acc-2"}


@pytest.mark.parametrize("text", ["HIGH_AMOUNT.threshold_brl", "threshold_brl=1", "=1", "X.y="])
def test_a_set_that_is_not_rule_param_value_is_refused(text: str) -> None:
    import typer

    from streamguard.cli.backtest import parse_sets

    with pytest.raises(typer.BadParameter, match="RULE.param=value"):
        parse_sets([text])


def test_a_rule_both_catalogs_render_alike_runs_once_for_both() -> None:
    rules = load_rules()
    live = Catalog("live", rules, {})
    raised = Catalog("candidate", rules, {"HIGH_AMOUNT.threshold_brl": "5000"})
    owners = distinct_rules([live, raised])
    assert len(owners) == len(rules) + 1
    assert sorted(map(tuple, owners.values())) == sorted(
        [("live", "candidate")] * (len(rules) - 1) + [("live",), ("candidate",)]
    )
    (only_raised,) = [sql for sql, names in owners.items() if names == ["candidate"]]
    assert "amount > 5000" in only_raised
