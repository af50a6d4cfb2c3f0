"""A catalog's decisions over the period, made by the live decision's own code, writing nothing.

The evidence is built and scored as the decision service does (`decide/decider.py`,
`domain/scoring.py`, `domain/policy.py`), from the catalog's alerts instead of the stored ones.
Each transaction is decided once, with all its alerts, in event-time order, and sees:
- the lists as they stood at its event time (`list_changes`);
- the account's transactions of the 30 days before it, as stored;
- the account's earlier alerts and cases: the stored ones before the period, the catalog's own
  within it (the candidate's cases would have been its history);
- the merchant's counters as they stood (`backtest/merchants.py`), with the catalog's own flags.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg

from streamguard.backtest.lists import ListTimeline
from streamguard.backtest.merchants import MerchantClock
from streamguard.decide.decider import evidence_of, with_context
from streamguard.domain.models import Action, FraudAlert, from_epoch_ms
from streamguard.domain.policy import Thresholds, action_for
from streamguard.domain.scoring import AccountHistory, AlertFact, assess
from streamguard.store import decisions as repo

#: Transactions decided per round trip of context reads.
CHUNK = 2_000
_WINDOW = timedelta(days=repo.HISTORY_DAYS)


@dataclass
class _Seen:
    """One account's alerts, reviews and blocks so far in the period (event times, sorted)."""

    alerts: list[datetime] = field(default_factory=list)
    reviews: list[datetime] = field(default_factory=list)
    blocks: list[datetime] = field(default_factory=list)


def decide_all(
    conn: psycopg.Connection,
    alerts: Sequence[FraudAlert],
    listed: Sequence[str],
    *,
    start: datetime,
    timeline: ListTimeline,
    merchants: MerchantClock,
    thresholds: Thresholds,
) -> dict[str, str]:
    """The action of every transaction that an alert or a list hit brings to a decision.
    `merchants` holds the counts of at least these transactions (`decided_ids`)."""
    by_tx: dict[str, list[repo.StoredAlert]] = {}
    for alert in sorted(alerts, key=lambda a: a.alert_id):
        by_tx.setdefault(alert.transaction_id, []).append(_stored(alert))
    ids = sorted(set(by_tx) | set(listed))
    stored = {}
    for begin in range(0, len(ids), CHUNK):
        stored.update(repo.load_transactions(conn, ids[begin : begin + CHUNK]))
    moment = {tx: stored[tx].event_time if tx in stored else by_tx[tx][0].event_time for tx in ids}
    ordered = sorted(ids, key=lambda tx: (moment[tx], tx))
    seen: dict[str, _Seen] = {}
    clock = merchants.for_catalog()
    actions: dict[str, str] = {}
    for begin in range(0, len(ordered), CHUNK):
        chunk = ordered[begin : begin + CHUNK]
        for tx, action in _decide_chunk(
            conn,
            chunk,
            stored,
            by_tx,
            seen,
            moment=moment,
            start=start,
            timeline=timeline,
            merchants=clock,
            thresholds=thresholds,
        ):
            actions[tx] = action
    return actions


def _decide_chunk(
    conn: psycopg.Connection,
    chunk: list[str],
    stored: dict[str, repo.StoredTransaction],
    by_tx: dict[str, list[repo.StoredAlert]],
    seen: dict[str, _Seen],
    *,
    moment: dict[str, datetime],
    start: datetime,
    timeline: ListTimeline,
    merchants: MerchantClock,
    thresholds: Thresholds,
) -> list[tuple[str, str]]:
    """Decide a run of transactions (event-time order), reading their context in one go."""
    items = []
    for tx in chunk:
        found = evidence_of(tx, stored.get(tx), by_tx.get(tx, []), timeline.at(moment[tx]))
        if found is not None:
            items.append(found)
    histories = repo.load_histories(
        conn, [(e.transaction_id, e.account_id, at) for e, at in items], live_until=start
    )
    decided = []
    for item, at in items:
        account = seen.setdefault(item.account_id, _Seen())
        own = len(by_tx.get(item.transaction_id, ()))
        history = _with_period(histories.get(item.transaction_id, AccountHistory()), account, at)
        merchant = merchants.at(item.transaction_id, at)
        counters = {merchant[0]: merchant[1]} if merchant else {}
        item = with_context(item, {item.transaction_id: history}, counters)
        action = action_for(assess(item), thresholds)  # a first decision: nothing to keep
        decided.append((item.transaction_id, action.value))
        if merchant and action is not Action.APPROVE:
            merchants.flag(merchant[0], at)
        for _ in range(own):
            bisect.insort(account.alerts, at)
        if action is Action.REVIEW:
            bisect.insort(account.reviews, at)
        elif action is Action.BLOCK:
            bisect.insort(account.blocks, at)
    return decided


def _with_period(history: AccountHistory, account: _Seen, at: datetime) -> AccountHistory:
    """The stored history before the period plus this catalog's alerts and cases within it."""
    since = at - _WINDOW
    return replace(
        history,
        prior_alerts=history.prior_alerts + _count(account.alerts, since, at, inclusive=True),
        prior_reviews=history.prior_reviews + _count(account.reviews, since, at),
        prior_blocks=history.prior_blocks + _count(account.blocks, since, at),
    )


def _count(
    times: list[datetime], since: datetime, until: datetime, *, inclusive: bool = False
) -> int:
    """How many of the sorted `times` lie in [since, until) (or [since, until])."""
    high = bisect.bisect_right(times, until) if inclusive else bisect.bisect_left(times, until)
    return max(0, high - bisect.bisect_left(times, since))


def _stored(alert: FraudAlert) -> repo.StoredAlert:
    fact = AlertFact(alert.rule_id, alert.severity, alert.score_weight, dict(alert.evidence))
    return repo.StoredAlert(
        alert.transaction_id,
        alert.account_id,
        alert.amount,
        from_epoch_ms(alert.ts_ms),
        None,
        fact,
        alert.alert_id,
    )
