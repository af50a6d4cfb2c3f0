"""Detection quality against the generator's labels: precision and recall. Pure, no I/O.

Definitions (the issue leaves them open, so they are fixed here and in the report):
- A transaction is *flagged* by a rule when the rule alerted on it, and *flagged by the pipeline*
  when any rule alerted on it or its decision is REVIEW or BLOCK (list hits need no alert).
- Precision counts a flag as right when the transaction is fraud of any scenario: a HIGH_AMOUNT
  alert on an account takeover is a catch, not a false alarm.
- A rule's recall is over the scenarios it targets (`RULE_TARGETS`); a scenario's recall is over
  the pipeline's flags, whatever rule raised them.
- Recall is given per transaction and per incident (one attack: a scenario on one account).
  A velocity rule fires from the 4th transaction of a burst; the first three are caught by the
  decision, which escalates them to REVIEW once the burst is judged (`domain/bursts.py`), so
  they count through their final action. The incident recall says whether the attack itself
  was caught.
- A step judges the transactions whose event time falls in its measured window, except card
  tests: a card_testing episode (test charges, then the cash-out that CARD_TESTING alerts on)
  lasts longer than a minute, so it is judged whole in the step whose window holds its cash-out,
  its test charges looked back to the step's start, and not at all where the window holds only
  its first charges (`judge_card_tests`). Otherwise an episode cut by the window's start would
  count its cash-out alone and one cut by the end its test charges, missed, alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from streamguard.domain.quality import Quality, ratio4
from streamguard.generate.defaults import CARD_SMALL_MAX_BRL

LEGIT = "legit"
FLAGGING_ACTIONS = frozenset({"REVIEW", "BLOCK"})

#: Which scenarios each rule is meant to catch.
RULE_TARGETS: dict[str, tuple[str, ...]] = {
    "HIGH_AMOUNT": ("high_amount",),
    "HIGH_VELOCITY": ("velocity_burst",),
    "HIGH_VELOCITY_AMOUNT": ("velocity_burst",),
    "CARD_TESTING": ("card_testing",),
    "IMPOSSIBLE_TRAVEL": ("impossible_travel",),
    "NIGHT_SPENDING": ("night_spending",),
}


@dataclass(frozen=True)
class Outcome:
    """What the pipeline did with one transaction, next to its ground truth."""

    transaction_id: str
    scenario: str = LEGIT
    is_fraud: bool = False
    rules: frozenset[str] = frozenset()
    action: str | None = None
    incident: str | None = None

    @property
    def flagged(self) -> bool:
        """Caught by a rule or by the decision."""
        return bool(self.rules) or self.action in FLAGGING_ACTIONS


Predicate = Callable[[Outcome], bool]


def fired_by(rules: frozenset[str] | set[str]) -> Predicate:
    """A predicate: some rule of `rules` alerted on the outcome."""
    return lambda o: bool(o.rules & rules)


def score(outcomes: Iterable[Outcome], flagged: Predicate, relevant: Predicate) -> Quality:
    """Score a detector: `flagged(o)` says it fired, `relevant(o)` says it should have."""
    tp = fp = fn = 0
    for outcome in outcomes:
        hit, wanted = flagged(outcome), relevant(outcome)
        tp += hit and wanted
        fp += hit and not wanted
        fn += wanted and not hit
    return Quality(tp, fp, fn)


def incident_recall(outcomes: Iterable[Outcome], caught: Predicate) -> tuple[int, int]:
    """(incidents caught, incidents) over fraud outcomes grouped by their incident key."""
    hits: dict[str, bool] = {}
    for outcome in outcomes:
        if not outcome.is_fraud:
            continue
        key = outcome.incident or outcome.transaction_id
        hits[key] = hits.get(key, False) or caught(outcome)
    return sum(hits.values()), len(hits)


def overall(outcomes: list[Outcome]) -> dict[str, object]:
    """The pipeline as one detector, by alerts only and by the final verdict."""
    by_alerts = score(outcomes, lambda o: bool(o.rules), lambda o: o.is_fraud)
    by_pipeline = score(outcomes, lambda o: o.flagged, lambda o: o.is_fraud)
    caught, incidents = incident_recall(outcomes, lambda o: o.flagged)
    return {
        "transactions": len(outcomes),
        "fraud": sum(o.is_fraud for o in outcomes),
        "by_alerts": by_alerts.as_dict(),
        "by_pipeline": by_pipeline.as_dict(),
        "incidents": incidents,
        "incidents_caught": caught,
        "incident_recall": ratio4(caught / incidents) if incidents else None,
    }


def per_rule(outcomes: list[Outcome], rules: Iterable[str]) -> dict[str, dict[str, object]]:
    """Each rule's alerts, precision (fraud of any kind) and recall over its target scenarios."""
    result: dict[str, dict[str, object]] = {}
    for rule in sorted(set(rules) | {r for o in outcomes for r in o.rules}):
        targets = RULE_TARGETS.get(rule, ())
        by_rule = fired_by({rule})
        fired = score(outcomes, by_rule, lambda o: o.is_fraud)
        on_target = [o for o in outcomes if o.scenario in targets]
        recall = score(on_target, by_rule, lambda o: True).recall
        caught, incidents = incident_recall(on_target, by_rule)
        result[rule] = {
            "alerts": fired.true_positives + fired.false_positives,
            "precision": ratio4(fired.precision),
            "false_positives": fired.false_positives,
            "targets": list(targets),
            "recall": ratio4(recall),
            "incident_recall": ratio4(caught / incidents) if incidents else None,
        }
    return result


def per_scenario(outcomes: list[Outcome]) -> dict[str, dict[str, object]]:
    """Each scenario's recall by the pipeline, the rules that caught it, and their precision."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.scenario].append(outcome)
    result: dict[str, dict[str, object]] = {}
    for scenario, members in sorted(groups.items()):
        flagged = sum(o.flagged for o in members)
        caught_by = Counter(rule for o in members for rule in o.rules)
        entry: dict[str, object] = {
            "transactions": len(members),
            "flagged": flagged,
            "caught_by": dict(sorted(caught_by.items())),
        }
        if scenario == LEGIT or not any(o.is_fraud for o in members):
            entry["false_positive_rate"] = ratio4(flagged / len(members))
        else:
            caught, incidents = incident_recall(members, lambda o: o.flagged)
            targets = {r for r, scenarios in RULE_TARGETS.items() if scenario in scenarios}
            by_targets = score(outcomes, fired_by(targets), lambda o: o.is_fraud)
            entry.update(
                recall=ratio4(flagged / len(members)),
                incidents=incidents,
                incident_recall=ratio4(caught / incidents) if incidents else None,
                target_rules=sorted(targets),
                precision=ratio4(by_targets.precision),
            )
        result[scenario] = entry
    return result


def detection_quality(
    outcomes: list[Outcome], rules: Iterable[str] = (), quiet_legit: int = 0
) -> dict[str, object]:
    """The whole quality section of the report.

    `quiet_legit` counts legitimate transactions that nothing flagged and that were left out of
    `outcomes` to save memory: they change no precision or recall, only the totals and the
    legitimate traffic's false-positive rate.
    """
    totals = overall(outcomes)
    totals["transactions"] = int(totals["transactions"]) + quiet_legit  # type: ignore[call-overload]
    scenarios = per_scenario(outcomes)
    if quiet_legit:
        legit = scenarios.setdefault(LEGIT, {"transactions": 0, "flagged": 0, "caught_by": {}})
        legit["transactions"] = int(legit["transactions"]) + quiet_legit  # type: ignore[call-overload]
        legit["false_positive_rate"] = ratio4(
            int(legit["flagged"]) / int(legit["transactions"])  # type: ignore[call-overload]
        )
    return {
        "overall": totals,
        "per_rule": per_rule(outcomes, rules),
        "per_scenario": scenarios,
    }


def outcomes_from(
    transactions: Iterable[tuple[str, str]],
    labels: Mapping[str, tuple[str, bool]],
    alerts: Mapping[str, frozenset[str]],
    actions: Mapping[str, str],
) -> list[Outcome]:
    """Join (transaction_id, account_id) rows with labels, alerts and decisions.

    A transaction without a label is legitimate; its incident is the scenario on its account.
    """
    result = []
    for tx_id, account_id in transactions:
        scenario, is_fraud = labels.get(tx_id, (LEGIT, False))
        result.append(
            Outcome(
                transaction_id=tx_id,
                scenario=scenario,
                is_fraud=is_fraud,
                rules=alerts.get(tx_id, frozenset()),
                action=actions.get(tx_id),
                incident=f"{scenario}:{account_id}" if is_fraud else None,
            )
        )
    return result


@dataclass(frozen=True)
class CardCharge:
    """One card_testing transaction: a test charge, or the cash-out that ends the episode."""

    transaction_id: str
    account_id: str
    at_s: float  # event time, epoch seconds
    amount_brl: Decimal

    @property
    def is_test(self) -> bool:
        """A small charge that checks the card (CARD_TESTING's S), not the cash-out."""
        return self.amount_brl < CARD_SMALL_MAX_BRL


def card_tests_in_window(charges: Iterable[CardCharge], window: tuple[float, float]) -> set[str]:
    """The card_testing transactions a step judges: every episode whose cash-out falls in
    `window` [start, end), with all its test charges, however long before the window.

    An account's charges are read in time order; a cash-out closes the episode of the test
    charges before it. Test charges left open (the cash-out came after the window, or never:
    the generator stopped first) are not judged, since no rule could have fired on them yet.
    """
    by_account: dict[str, list[CardCharge]] = defaultdict(list)
    for charge in charges:
        by_account[charge.account_id].append(charge)
    judged: set[str] = set()
    for account_charges in by_account.values():
        tests: list[CardCharge] = []
        for charge in sorted(account_charges, key=lambda c: c.at_s):
            if charge.is_test:
                tests.append(charge)
                continue
            if window[0] <= charge.at_s < window[1]:
                judged.update(c.transaction_id for c in (*tests, charge))
            tests = []
    return judged


def judge_card_tests(
    rows: Sequence[tuple[str, str]], charges: Sequence[CardCharge], window: tuple[float, float]
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """`rows` (transaction_id, account_id) with the card_testing ones (`charges`, read from the
    step's start) narrowed to those `card_tests_in_window` judges; and how many judged charges
    were looked back to before the window, and how many of the window's were left out."""
    judged = card_tests_in_window(charges, window)
    looked_back = sum(c.transaction_id in judged and c.at_s < window[0] for c in charges)
    left_out = sum(
        c.transaction_id not in judged and window[0] <= c.at_s < window[1] for c in charges
    )
    card = {c.transaction_id for c in charges}
    kept = [row for row in rows if row[0] not in card or row[0] in judged]
    return kept, {"looked_back": looked_back, "left_out": left_out}
