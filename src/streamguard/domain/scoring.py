"""Scoring: the rule alerts, list hits and context of one transaction become a score with reasons.

Pure functions over values. Every point of the score comes with a human-readable reason and its
weight, so an analyst can see why a transaction was held. The weights are deliberately few and
round; they are a starting policy, not a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

#: Merchant category codes with a high share of fraud losses (quasi-cash, transfers, gambling).
HIGH_RISK_MCCS = frozenset({"4829", "5967", "6051", "6211", "7801", "7802", "7995"})

BLOCK_LIST_WEIGHT = 100
ALLOW_LIST_WEIGHT = -30
AMOUNT_RATIO = Decimal(5)
AMOUNT_WEIGHT = 15
NEW_DEVICE_WEIGHT = 10
NEW_CITY_WEIGHT = 10
THIN_HISTORY_WEIGHT = 5
PRIOR_ALERT_WEIGHT, PRIOR_ALERT_CAP = 5, 15
PRIOR_BLOCK_WEIGHT, PRIOR_REVIEW_WEIGHT = 10, 5
RISKY_MCC_WEIGHT = 10
MERCHANT_FLAGGED_WEIGHT = 10
MERCHANT_FLAGGED_RATE = 0.10
MERCHANT_MIN_TX = 50
FAMILIAR_WEIGHT = -10
#: History needed before "new device", "new city" or "unusual amount" mean anything.
MIN_HISTORY = 5
FAMILIAR_HISTORY = 20
THIN_HISTORY = 3


@dataclass(frozen=True)
class Reason:
    """One contribution to the score: a stable code, its weight in points, and a sentence."""

    code: str
    weight: int
    text: str

    def render(self) -> str:
        """The reason as one line, weight first: `+40 rule HIGH_AMOUNT (HIGH): ...`."""
        return f"{self.weight:+d} {self.text}"


@dataclass(frozen=True)
class AlertFact:
    """What a rule alert contributes."""

    rule_id: str
    severity: str
    score_weight: int
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListHit:
    """The transaction's account, merchant or device is on a block or allow list."""

    list_type: str  # BLOCK or ALLOW
    entity_type: str  # ACCOUNT, MERCHANT or DEVICE
    value: str
    reason: str = ""

    @property
    def label(self) -> str:
        """A short stable name such as `BLOCK:MERCHANT:M042`."""
        return f"{self.list_type}:{self.entity_type}:{self.value}"


@dataclass(frozen=True)
class TxFacts:
    """The parts of the transaction the context needs; absent while only its alert has arrived.

    Any of them but the amount may be None, unknown: a reason that needs one is then not given,
    neither for nor against the transaction."""

    amount: Decimal
    merchant_id: str | None
    merchant_mcc: str | None
    city: str | None
    device_id: str | None


@dataclass(frozen=True)
class AccountHistory:
    """The account's recent past, before this transaction; cities and devices are the known
    ones (a transaction without a city adds none)."""

    tx_count: int = 0
    avg_amount: Decimal | None = None
    cities: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    prior_alerts: int = 0
    prior_reviews: int = 0
    prior_blocks: int = 0


@dataclass(frozen=True)
class MerchantRisk:
    """How many of the merchant's transactions the pipeline has seen and flagged."""

    tx_count: int = 0
    flagged_count: int = 0


@dataclass(frozen=True)
class Evidence:
    """Everything known about one transaction when it is (re)decided."""

    transaction_id: str
    account_id: str
    amount: Decimal
    alerts: tuple[AlertFact, ...] = ()
    list_hits: tuple[ListHit, ...] = ()
    tx: TxFacts | None = None
    history: AccountHistory = AccountHistory()
    merchant: MerchantRisk | None = None


@dataclass(frozen=True)
class Assessment:
    """A score from 0 to 100 with the reasons that add up to it."""

    score: int
    reasons: tuple[Reason, ...]
    rule_ids: tuple[str, ...]
    list_hits: tuple[str, ...]
    blocked: bool
    allowed: bool


def assess(evidence: Evidence) -> Assessment:
    """Score one transaction; reasons are ordered as they are listed here."""
    reasons = [
        *_rule_reasons(evidence.alerts),
        *_list_reasons(evidence.list_hits),
        *_context_reasons(evidence),
        *_merchant_reasons(evidence),
    ]
    raw = sum(reason.weight for reason in reasons)
    return Assessment(
        score=max(0, min(100, raw)),
        reasons=tuple(reasons),
        rule_ids=tuple(sorted({alert.rule_id for alert in evidence.alerts})),
        list_hits=tuple(sorted(hit.label for hit in evidence.list_hits)),
        blocked=any(hit.list_type == "BLOCK" for hit in evidence.list_hits),
        allowed=any(hit.list_type == "ALLOW" for hit in evidence.list_hits),
    )


def _rule_reasons(alerts: tuple[AlertFact, ...]) -> list[Reason]:
    """One reason per rule: a rule that fired twice for a transaction counts once."""
    best: dict[str, AlertFact] = {}
    for alert in alerts:
        if alert.rule_id not in best or alert.score_weight > best[alert.rule_id].score_weight:
            best[alert.rule_id] = alert
    reasons = []
    for rule_id in sorted(best):
        alert = best[rule_id]
        facts = ", ".join(f"{key}={value}" for key, value in sorted(alert.evidence.items()))
        text = f"rule {rule_id} ({alert.severity})" + (f": {facts}" if facts else "")
        reasons.append(Reason(f"RULE:{rule_id}", alert.score_weight, text))
    return reasons


def _list_reasons(hits: tuple[ListHit, ...]) -> list[Reason]:
    reasons = []
    for hit in sorted(hits, key=lambda h: h.label):
        weight = BLOCK_LIST_WEIGHT if hit.list_type == "BLOCK" else ALLOW_LIST_WEIGHT
        why = f" ({hit.reason})" if hit.reason else ""
        text = f"{hit.entity_type.lower()} {hit.value} is on the {hit.list_type.lower()} list{why}"
        reasons.append(Reason(f"LIST:{hit.label}", weight, text))
    return reasons


def _context_reasons(evidence: Evidence) -> list[Reason]:
    history, tx = evidence.history, evidence.tx
    reasons = []
    if history.tx_count < THIN_HISTORY:
        reasons.append(
            Reason(
                "THIN_HISTORY",
                THIN_HISTORY_WEIGHT,
                f"account has only {history.tx_count} earlier transactions in 30 days",
            )
        )
    average = history.avg_amount
    if history.tx_count >= MIN_HISTORY and average and evidence.amount >= AMOUNT_RATIO * average:
        ratio = evidence.amount / average
        reasons.append(
            Reason(
                "UNUSUAL_AMOUNT",
                AMOUNT_WEIGHT,
                f"amount R$ {evidence.amount:.2f} is {ratio:.1f}x the account's average "
                f"R$ {average:.2f} over {history.tx_count} transactions",
            )
        )
    if tx is not None and history.tx_count >= MIN_HISTORY:
        reasons.extend(_novelty_reasons(tx, history))
    reasons.extend(_prior_reasons(history))
    if (
        tx is not None
        and history.tx_count >= FAMILIAR_HISTORY
        and average
        and evidence.amount <= 2 * average
        and tx.device_id in history.devices
        and tx.city in history.cities
        and not history.prior_alerts
    ):
        reasons.append(
            Reason(
                "FAMILIAR",
                FAMILIAR_WEIGHT,
                f"usual device, city and amount for an account with {history.tx_count} "
                "transactions and no earlier alert",
            )
        )
    return reasons


def _novelty_reasons(tx: TxFacts, history: AccountHistory) -> list[Reason]:
    """A device or city the account never used; unknown on either side says nothing."""
    reasons = []
    if tx.device_id is not None and history.devices and tx.device_id not in history.devices:
        reasons.append(
            Reason("NEW_DEVICE", NEW_DEVICE_WEIGHT, f"device {tx.device_id} never seen before")
        )
    if tx.city is not None and history.cities and tx.city not in history.cities:
        reasons.append(Reason("NEW_CITY", NEW_CITY_WEIGHT, f"first transaction from {tx.city}"))
    return reasons


def _prior_reasons(history: AccountHistory) -> list[Reason]:
    reasons = []
    if history.prior_alerts:
        weight = min(PRIOR_ALERT_CAP, PRIOR_ALERT_WEIGHT * history.prior_alerts)
        reasons.append(
            Reason(
                "PRIOR_ALERTS",
                weight,
                f"{history.prior_alerts} alerts on the account's other transactions in 30 days",
            )
        )
    if history.prior_blocks:
        reasons.append(
            Reason(
                "PRIOR_BLOCKS",
                PRIOR_BLOCK_WEIGHT,
                f"{history.prior_blocks} of the account's transactions blocked in 30 days",
            )
        )
    elif history.prior_reviews:
        reasons.append(
            Reason(
                "PRIOR_REVIEWS",
                PRIOR_REVIEW_WEIGHT,
                f"{history.prior_reviews} of the account's transactions sent to review in 30 days",
            )
        )
    return reasons


def _merchant_reasons(evidence: Evidence) -> list[Reason]:
    tx, merchant = evidence.tx, evidence.merchant
    if tx is None:
        return []
    reasons = []
    if tx.merchant_mcc in HIGH_RISK_MCCS:
        reasons.append(
            Reason(
                "RISKY_MCC",
                RISKY_MCC_WEIGHT,
                f"merchant {tx.merchant_id or '(unknown)'} has high-risk category "
                f"{tx.merchant_mcc}",
            )
        )
    if merchant is not None and merchant.tx_count >= MERCHANT_MIN_TX:
        rate = merchant.flagged_count / merchant.tx_count
        if rate >= MERCHANT_FLAGGED_RATE:
            reasons.append(
                Reason(
                    "RISKY_MERCHANT",
                    MERCHANT_FLAGGED_WEIGHT,
                    f"merchant {tx.merchant_id} had {rate:.0%} of its {merchant.tx_count} "
                    "transactions flagged",
                )
            )
    return reasons
