"""What a candidate rule catalog would have done to past traffic, beside the live one. Pure.

Definitions (the issue leaves them open, so they are fixed here and in the report):
- A transaction nobody alerted on and no list names is approved without a decision, as live.
- A *case* is a REVIEW or BLOCK decision: what lands in the analysts' queue.
- The truth of a transaction is the generator's label where there is one, else an analyst's
  resolution (CONFIRMED_FRAUD is fraud; FALSE_POSITIVE and LEGITIMATE are not), else unknown.
  An unknown transaction counts in no precision or recall.
- A rule's precision is over its alerts on judged transactions; its recall is the share of the
  period's known fraud it alerted on. The catalog's are over its cases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from streamguard.domain.quality import Quality

ACTIONS = ("APPROVE", "REVIEW", "BLOCK")
CASE_ACTIONS = frozenset({"REVIEW", "BLOCK"})
FRAUD_RESOLUTIONS = frozenset({"CONFIRMED_FRAUD"})


@dataclass(frozen=True)
class CatalogRun:
    """One catalog over the period: the rules that fired and the action, per transaction."""

    alerts: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Decided transactions only; every other one was approved without a decision.
    actions: Mapping[str, str] = field(default_factory=dict)

    def action(self, transaction_id: str) -> str:
        """The transaction's action (APPROVE when nothing decided it)."""
        return self.actions.get(transaction_id, "APPROVE")

    def cases(self) -> set[str]:
        """The transactions that would have reached the review queue."""
        return {tx for tx, action in self.actions.items() if action in CASE_ACTIONS}


@dataclass(frozen=True)
class Change:
    """A transaction whose verdict or alerts differ between the catalogs."""

    transaction_id: str
    live_action: str
    candidate_action: str
    added_rules: tuple[str, ...]
    removed_rules: tuple[str, ...]


def truth_from(labels: Mapping[str, bool], resolutions: Mapping[str, str]) -> dict[str, bool]:
    """Fraud or not per transaction: the label where there is one, else the resolution."""
    truth = {tx: resolution in FRAUD_RESOLUTIONS for tx, resolution in resolutions.items()}
    truth.update(labels)
    return truth


def quality(flagged: Iterable[str], truth: Mapping[str, bool]) -> Quality:
    """Score the flagged transactions against the truth (unknown ones count nowhere)."""
    hits = set(flagged)
    fraud = {tx for tx, is_fraud in truth.items() if is_fraud}
    judged = {tx for tx in hits if tx in truth}
    tp = len(judged & fraud)
    return Quality(tp, len(judged) - tp, len(fraud - hits))


def rules_of(*runs: CatalogRun) -> list[str]:
    """Every rule that fired in any of the runs, sorted."""
    return sorted({rule for run in runs for rules in run.alerts.values() for rule in rules})


def alerts_per_rule(run: CatalogRun) -> Counter[str]:
    """How many transactions each rule alerted on."""
    return Counter(rule for rules in run.alerts.values() for rule in rules)


def actions_count(run: CatalogRun, transactions: int) -> dict[str, int]:
    """Transactions by action over the period's `transactions` (undecided ones approved)."""
    counts = Counter(run.actions.values())
    counts["APPROVE"] += transactions - len(run.actions)
    return {action: counts[action] for action in ACTIONS}


def per_rule_quality(run: CatalogRun, truth: Mapping[str, bool]) -> dict[str, Quality]:
    """Each rule's quality over the transactions it alerted on."""
    fired: dict[str, set[str]] = {}
    for tx, rules in run.alerts.items():
        for rule in rules:
            fired.setdefault(rule, set()).add(tx)
    return {rule: quality(txs, truth) for rule, txs in sorted(fired.items())}


def cases_per_day(run: CatalogRun, days: Mapping[str, date]) -> dict[str, int]:
    """The review load: cases per local day of the transaction ('YYYY-MM-DD' -> count)."""
    counts = Counter(days[tx].isoformat() for tx in run.cases() if tx in days)
    return dict(sorted(counts.items()))


def changes(live: CatalogRun, candidate: CatalogRun, order: Iterable[str]) -> list[Change]:
    """The transactions whose action or alerts differ, in `order` (e.g. event time)."""
    touched = set(live.alerts) | set(candidate.alerts) | set(live.actions) | set(candidate.actions)
    found = []
    for tx in order:
        if tx not in touched:
            continue
        before, after = live.alerts.get(tx, frozenset()), candidate.alerts.get(tx, frozenset())
        if before == after and live.action(tx) == candidate.action(tx):
            continue
        found.append(
            Change(
                tx,
                live.action(tx),
                candidate.action(tx),
                tuple(sorted(after - before)),
                tuple(sorted(before - after)),
            )
        )
    return found
