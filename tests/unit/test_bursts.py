"""Velocity bursts: the window an alert names, which transactions it escalates, and why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streamguard.domain.bursts import BurstWindow, escalations, judged, window_of
from streamguard.domain.models import Action
from streamguard.domain.policy import ESCALATED, Thresholds, Verdict, escalate, revise
from streamguard.domain.scoring import AlertFact, Assessment, Reason

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
ACCOUNT = "ACC1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def velocity(count: int = 4, span_ms: int = 15_000, window_s: str = "60") -> AlertFact:
    evidence = {
        "count": str(count),
        "first_transaction_id": "tx1",
        "span_ms": str(span_ms),
        "window_s": window_s,
    }
    return AlertFact("HIGH_VELOCITY", "HIGH", 35, evidence)


def verdict(action: Action, version: int = 1) -> Verdict:
    return Verdict(action, 50, (Reason("RULE:X", 50, "rule X"),), ("X",), (), version)


def burst(count: int = 4) -> BurstWindow:
    """The window of the alert on tx{count}, 5 s after the one before, from tx1 at T0."""
    tx = f"tx{count}"
    window = window_of(
        f"HIGH_VELOCITY:{tx}", tx, ACCOUNT, at(5 * (count - 1)), velocity(count, 5000 * (count - 1))
    )
    assert window is not None
    return window


def members(n: int) -> list[tuple[str, str, datetime]]:
    return [(f"tx{i}", ACCOUNT, at(5 * (i - 1))) for i in range(1, n + 1)]


def test_the_window_runs_back_from_the_alert_by_its_span() -> None:
    window = window_of("HIGH_VELOCITY:tx4", "tx4", ACCOUNT, at(15), velocity(4, 15_000))
    assert window == BurstWindow("HIGH_VELOCITY:tx4", "tx4", ACCOUNT, at(0), at(15), 4, "60")
    assert window.holds("tx1", ACCOUNT, at(0)) and window.holds("tx3", ACCOUNT, at(10))
    assert not window.holds("tx4", ACCOUNT, at(15)), "the alerted transaction is decided itself"
    assert not window.holds("tx0", ACCOUNT, at(-0.001))
    assert not window.holds("tx9", "ACC2", at(5)), "another account's transaction"


def test_alerts_that_name_no_window_name_none() -> None:
    assert (
        window_of("RULE:t", "t", ACCOUNT, T0, AlertFact("HIGH_AMOUNT", "HIGH", 40, {"amount": "9"}))
        is None
    )
    garbled = AlertFact("HIGH_VELOCITY", "HIGH", 35, {**velocity().evidence, "span_ms": "soon"})
    assert window_of("RULE:t", "t", ACCOUNT, T0, garbled) is None
    assert window_of("RULE:t", "t", ACCOUNT, T0, velocity(count=1)) is None


def test_the_earlier_transactions_go_to_review_with_a_reason_naming_the_burst() -> None:
    found = escalations([burst(4)], members(4), {"tx4": verdict(Action.REVIEW)})
    assert sorted(found) == ["tx1", "tx2", "tx3"]
    for escalated, window in found.values():
        assert escalated.action is Action.REVIEW and escalated.version == 1
        assert window.alert_id == "HIGH_VELOCITY:tx4"
        assert escalated.reasons == (
            Reason(
                ESCALATED,
                0,
                "escalated: part of velocity burst of 4 transactions in 60 s,"
                " alert HIGH_VELOCITY:tx4",
            ),
        )


def test_a_block_or_review_is_left_alone_and_an_approval_keeps_its_reasons() -> None:
    current = {"tx1": verdict(Action.BLOCK), "tx2": verdict(Action.REVIEW, 3)}
    current["tx3"] = verdict(Action.APPROVE, 2)
    found = escalations([burst(4)], members(4), current)
    assert sorted(found) == ["tx3"]
    escalated, _ = found["tx3"]
    assert escalated.version == 3 and escalated.score == 50
    assert [r.code for r in escalated.reasons] == ["RULE:X", ESCALATED]


def test_escalating_again_changes_nothing() -> None:
    first = escalations([burst(4)], members(4), {})
    again = {tx: v for tx, (v, _) in first.items()}
    assert escalations([burst(4)], members(4), again) == {}
    assert escalations([burst(5), burst(6)], members(3), again) == {}


def test_the_widest_window_names_the_burst() -> None:
    found = escalations([burst(4), burst(6), burst(5)], members(6), {})
    assert sorted(found) == ["tx1", "tx2", "tx3", "tx4", "tx5"]
    assert {w.alert_id for _, w in found.values()} == {"HIGH_VELOCITY:tx6"}


def test_only_bursts_judged_worth_a_review_escalate() -> None:
    windows = [burst(4), burst(5), burst(6)]
    current = {"tx4": verdict(Action.APPROVE), "tx5": verdict(Action.REVIEW)}
    current["tx6"] = verdict(Action.BLOCK)
    assert judged(windows, current) == windows[1:]
    assert judged(windows, {}) == []


def test_an_escalation_stays_on_later_versions() -> None:
    escalated = escalate(None, burst(4).reason())
    assert escalated is not None
    milder = Assessment(10, (Reason("RULE:LOW", 10, "rule LOW"),), ("LOW",), (), False, False)
    later = revise(escalated, milder, Thresholds())
    assert later is not None and later.action is Action.REVIEW and later.version == 2
    assert [r.code for r in later.reasons] == ["RULE:LOW", ESCALATED, "KEPT"]
