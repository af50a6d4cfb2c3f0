"""Velocity bursts: which earlier transactions an alert's window names, and why they escalate.

A velocity alert fires from the 4th transaction of a burst; the transactions before it were
decided alone and approved. The alert's evidence names its window (`count`, `span_ms` back to
`first_transaction_id`, `window_s`), so once the burst is judged (the alerted transaction is
REVIEW or BLOCK) the account's other transactions in that window go to REVIEW, with a reason
that names the burst and the alert. Pure functions over values; `decide/decider.py` loads the
window's transactions and saves the new versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from streamguard.domain.models import Action
from streamguard.domain.policy import ESCALATED, Verdict, escalate
from streamguard.domain.scoring import AlertFact, Reason

#: The evidence keys by which an alert names its window (HIGH_VELOCITY's).
WINDOW_KEYS = ("count", "span_ms", "first_transaction_id", "window_s")


@dataclass(frozen=True)
class BurstWindow:
    """The transactions an alert counted: the account's, from `start` to `end` inclusive."""

    alert_id: str
    transaction_id: str
    account_id: str
    start: datetime
    end: datetime
    tx_count: int
    window_s: str

    def holds(self, transaction_id: str, account_id: str, event_time: datetime) -> bool:
        """True for another transaction of the account inside the window."""
        return (
            account_id == self.account_id
            and transaction_id != self.transaction_id
            and self.start <= event_time <= self.end
        )

    def reason(self) -> Reason:
        """The reason an escalated transaction shows (weight 0: it is not its own evidence)."""
        return Reason(
            ESCALATED,
            0,
            f"escalated: part of velocity burst of {self.tx_count} transactions in"
            f" {self.window_s} s, alert {self.alert_id}",
        )


def window_of(
    alert_id: str, transaction_id: str, account_id: str, event_time: datetime, fact: AlertFact
) -> BurstWindow | None:
    """The window an alert names in its evidence, or None when it names none (or garbles it)."""
    evidence = fact.evidence
    if not all(evidence.get(key) for key in WINDOW_KEYS):
        return None
    try:
        count, span_ms = int(evidence["count"]), int(evidence["span_ms"])
    except ValueError:
        return None
    if count < 2 or span_ms < 0:
        return None
    return BurstWindow(
        alert_id=alert_id,
        transaction_id=transaction_id,
        account_id=account_id,
        start=event_time - timedelta(milliseconds=span_ms),
        end=event_time,
        tx_count=count,
        window_s=evidence["window_s"],
    )


def judged(windows: Iterable[BurstWindow], current: Mapping[str, Verdict]) -> list[BurstWindow]:
    """The windows whose alerted transaction is now REVIEW or BLOCK: those bursts escalate.

    A velocity alert alone may score below review (its rule's weight); then the burst's earlier
    transactions are no more suspect than the one that tripped the rule, and stay as they are.
    """
    return [
        w
        for w in windows
        if (verdict := current.get(w.transaction_id)) is not None
        and verdict.action is not Action.APPROVE
    ]


def escalations(
    windows: Iterable[BurstWindow],
    members: Iterable[tuple[str, str, datetime]],
    current: Mapping[str, Verdict],
) -> dict[str, tuple[Verdict, BurstWindow]]:
    """For each (transaction_id, account_id, event_time) in a window: its escalated verdict.

    `current` holds the members' decisions (a member without one was approved without evidence).
    The widest window (most transactions) names the burst when several hold a member; members
    already REVIEW or BLOCK are left out, so a repeated alert changes nothing.
    """
    ordered = sorted(windows, key=lambda w: (-w.tx_count, w.alert_id))
    result: dict[str, tuple[Verdict, BurstWindow]] = {}
    for tx_id, account_id, event_time in members:
        window = next((w for w in ordered if w.holds(tx_id, account_id, event_time)), None)
        if window is None or tx_id in result:
            continue
        verdict = escalate(current.get(tx_id), window.reason())
        if verdict is not None:
            result[tx_id] = (verdict, window)
    return result
