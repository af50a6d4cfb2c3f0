"""Policy: an assessment becomes APPROVE, REVIEW or BLOCK, and a later one never downgrades it.

Block lists win over everything; an allow list keeps rules alone from blocking (a person reviews
instead). A transaction is re-decided whenever new evidence arrives (its transaction, an alert, a
list hit); a new version is recorded only when something changed, and its action is never milder
than the previous version's. A transaction can also be escalated by another one's alert (a velocity
burst it was part of, `domain/bursts.py`): that reason stays on every later version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streamguard.domain.models import Action
from streamguard.domain.scoring import Assessment, Reason

#: transactions.status for each action.
STATUS = {Action.APPROVE: "APPROVED", Action.REVIEW: "REVIEW", Action.BLOCK: "BLOCKED"}

#: The code of a reason that escalated a transaction because of another transaction's alert.
ESCALATED = "ESCALATED"


@dataclass(frozen=True)
class Thresholds:
    """Score cut-offs: at least `review` means REVIEW, at least `block` means BLOCK."""

    review: int = 40
    block: int = 70

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.block <= 100:
            raise ValueError("thresholds must satisfy 0 < review <= block <= 100")


@dataclass(frozen=True)
class Verdict:
    """One version of a transaction's decision."""

    action: Action
    score: int
    reasons: tuple[Reason, ...]
    rule_ids: tuple[str, ...]
    list_hits: tuple[str, ...]
    version: int = 1

    @property
    def status(self) -> str:
        """The transaction's status for this action."""
        return STATUS[self.action]

    def same_outcome(self, other: Verdict) -> bool:
        """True when nothing but the version differs."""
        return replace(self, version=other.version) == other


def action_for(assessment: Assessment, thresholds: Thresholds) -> Action:
    """The action an assessment calls for, on its own."""
    if assessment.blocked:
        return Action.BLOCK
    if assessment.score >= thresholds.block:
        action = Action.BLOCK
    elif assessment.score >= thresholds.review:
        action = Action.REVIEW
    else:
        action = Action.APPROVE
    if assessment.allowed and action is Action.BLOCK:
        return Action.REVIEW
    return action


def revise(
    previous: Verdict | None, assessment: Assessment, thresholds: Thresholds
) -> Verdict | None:
    """The next version of a decision, or None when the new evidence changes nothing."""
    action = action_for(assessment, thresholds)
    reasons = assessment.reasons
    if previous is not None:  # an escalation came from elsewhere: no assessment repeats it
        reasons = (*reasons, *(r for r in previous.reasons if r.code == ESCALATED))
    if previous is not None and action.severity < previous.action.severity:
        kept = Reason(
            "KEPT",
            0,
            f"kept {previous.action.value}: the new evidence alone says {action.value}, "
            "and a decision is never downgraded",
        )
        action, reasons = previous.action, (*reasons, kept)
    candidate = Verdict(
        action=action,
        score=assessment.score,
        reasons=reasons,
        rule_ids=assessment.rule_ids,
        list_hits=assessment.list_hits,
        version=1 if previous is None else previous.version + 1,
    )
    if previous is not None and candidate.same_outcome(previous):
        return None
    return candidate


def escalate(current: Verdict | None, reason: Reason) -> Verdict | None:
    """REVIEW for an undecided or approved transaction, for a reason outside its own evidence.

    None when it is already REVIEW or BLOCK: never downgraded, and escalated once whatever the
    number of alerts that say so. The score stays that of its own evidence.
    """
    if current is None:
        return Verdict(Action.REVIEW, 0, (reason,), (), ())
    if current.action is not Action.APPROVE:
        return None
    return replace(
        current,
        action=Action.REVIEW,
        reasons=(*current.reasons, reason),
        version=current.version + 1,
    )
