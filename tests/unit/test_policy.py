"""Policy: thresholds, list precedence, escalation and no silent downgrade."""

from __future__ import annotations

import pytest

from streamguard.domain.models import Action
from streamguard.domain.policy import Thresholds, Verdict, action_for, revise
from streamguard.domain.scoring import Assessment, Reason

LIMITS = Thresholds(review=40, block=70)


def assessment(score: int, *, blocked: bool = False, allowed: bool = False, rules=()) -> Assessment:
    return Assessment(
        score=score,
        reasons=(Reason("X", score, f"x {score}"),),
        rule_ids=tuple(rules),
        list_hits=(),
        blocked=blocked,
        allowed=allowed,
    )


@pytest.mark.parametrize(
    ("score", "action"),
    [
        (0, Action.APPROVE),
        (39, Action.APPROVE),
        (40, Action.REVIEW),
        (69, Action.REVIEW),
        (70, Action.BLOCK),
        (100, Action.BLOCK),
    ],
)
def test_thresholds(score: int, action: Action) -> None:
    assert action_for(assessment(score), LIMITS) is action


def test_block_list_wins_and_allow_list_caps_rules_at_review() -> None:
    assert action_for(assessment(0, blocked=True, allowed=True), LIMITS) is Action.BLOCK
    assert action_for(assessment(95, allowed=True), LIMITS) is Action.REVIEW
    assert action_for(assessment(10, allowed=True), LIMITS) is Action.APPROVE


def test_first_decision_is_version_1() -> None:
    first = revise(None, assessment(45, rules=["HIGH_AMOUNT"]), LIMITS)
    assert first is not None
    assert (first.action, first.version, first.status) == (Action.REVIEW, 1, "REVIEW")


def test_escalation_makes_a_new_version() -> None:
    first = revise(None, assessment(45), LIMITS)
    second = revise(first, assessment(80), LIMITS)
    assert second is not None
    assert (second.action, second.version, second.status) == (Action.BLOCK, 2, "BLOCKED")


def test_same_evidence_again_changes_nothing() -> None:
    first = revise(None, assessment(45), LIMITS)
    assert revise(first, assessment(45), LIMITS) is None


def test_never_a_silent_downgrade() -> None:
    blocked = revise(None, assessment(80), LIMITS)
    milder = revise(blocked, assessment(50), LIMITS)
    assert milder is not None
    assert milder.action is Action.BLOCK and milder.version == 2
    assert milder.score == 50
    kept = milder.reasons[-1]
    assert kept.code == "KEPT" and kept.weight == 0 and "never downgraded" in kept.text
    # and the kept version is stable: the same evidence once more records nothing
    assert revise(milder, assessment(50), LIMITS) is None


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Thresholds(review=80, block=70)


def test_verdict_status_names() -> None:
    verdict = Verdict(Action.APPROVE, 0, (), (), ())
    assert verdict.status == "APPROVED"
