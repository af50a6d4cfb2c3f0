"""Scoring: every point of the score has a reason with its weight."""

from __future__ import annotations

from decimal import Decimal

from streamguard.domain.scoring import (
    AccountHistory,
    AlertFact,
    Evidence,
    ListHit,
    MerchantRisk,
    TxFacts,
    assess,
)

HIGH_AMOUNT = AlertFact("HIGH_AMOUNT", "HIGH", 40, {"amount_brl": "5000.00"})
VELOCITY = AlertFact("HIGH_VELOCITY", "HIGH", 35, {"count": "4"})
USUAL = AccountHistory(
    tx_count=30,
    avg_amount=Decimal("100.00"),
    cities=frozenset({"São Paulo"}),
    devices=frozenset({"dev-1"}),
)


def facts(**changes: object) -> TxFacts:
    values = dict(
        amount=Decimal("120.00"),
        merchant_id="M001",
        merchant_mcc="5311",
        city="São Paulo",
        device_id="dev-1",
    )
    values.update(changes)
    return TxFacts(**values)  # type: ignore[arg-type]


def evidence(amount: str = "120.00", **changes: object) -> Evidence:
    values: dict[str, object] = dict(
        transaction_id="t1",
        account_id="A1",
        amount=Decimal(amount),
        tx=facts(amount=Decimal(amount)),
        history=USUAL,
    )
    values.update(changes)
    return Evidence(**values)  # type: ignore[arg-type]


def codes(item: Evidence) -> dict[str, int]:
    return {reason.code: reason.weight for reason in assess(item).reasons}


def test_score_is_the_sum_of_the_reason_weights() -> None:
    item = evidence("5000.00", alerts=(HIGH_AMOUNT, VELOCITY), tx=facts(device_id="dev-9"))
    result = assess(item)
    assert result.score == sum(r.weight for r in result.reasons) == 40 + 35 + 15 + 10
    assert codes(item) == {
        "RULE:HIGH_AMOUNT": 40,
        "RULE:HIGH_VELOCITY": 35,
        "UNUSUAL_AMOUNT": 15,
        "NEW_DEVICE": 10,
    }
    assert result.rule_ids == ("HIGH_AMOUNT", "HIGH_VELOCITY")


def test_reasons_are_readable_with_their_weights() -> None:
    rendered = [r.render() for r in assess(evidence("5000.00", alerts=(HIGH_AMOUNT,))).reasons]
    assert rendered[0] == "+40 rule HIGH_AMOUNT (HIGH): amount_brl=5000.00"
    assert rendered[1].startswith("+15 amount R$ 5000.00 is 50.0x the account's average R$ 100.00")


def test_a_rule_counts_once_per_transaction() -> None:
    assert assess(evidence(alerts=(HIGH_AMOUNT, HIGH_AMOUNT))).score == 40 - 10


def test_familiar_behaviour_lowers_the_score_and_thin_history_raises_it() -> None:
    assert codes(evidence(alerts=(HIGH_AMOUNT,)))["FAMILIAR"] == -10
    thin = codes(evidence(alerts=(HIGH_AMOUNT,), history=AccountHistory(tx_count=1)))
    assert thin == {"RULE:HIGH_AMOUNT": 40, "THIN_HISTORY": 5}


def test_new_city_and_device_need_enough_history_to_mean_anything() -> None:
    moved = facts(city="Recife", device_id="dev-2")
    assert {"NEW_CITY", "NEW_DEVICE"} <= codes(evidence(tx=moved)).keys()
    short = AccountHistory(tx_count=4, cities=frozenset({"São Paulo"}), avg_amount=Decimal(1))
    assert not {"NEW_CITY", "NEW_DEVICE"} & codes(evidence(tx=moved, history=short)).keys()


def test_prior_alerts_and_decisions_count_with_a_cap() -> None:
    history = AccountHistory(tx_count=10, avg_amount=Decimal(100), prior_alerts=7, prior_blocks=1)
    found = codes(evidence(history=history))
    assert found["PRIOR_ALERTS"] == 15 and found["PRIOR_BLOCKS"] == 10
    reviews = AccountHistory(tx_count=10, avg_amount=Decimal(100), prior_reviews=2)
    assert codes(evidence(history=reviews))["PRIOR_REVIEWS"] == 5


def test_merchant_risk_from_category_and_flagged_share() -> None:
    risky = evidence(tx=facts(merchant_mcc="7995"), merchant=MerchantRisk(100, 20))
    assert codes(risky)["RISKY_MCC"] == 10 and codes(risky)["RISKY_MERCHANT"] == 10
    assert "RISKY_MERCHANT" not in codes(evidence(merchant=MerchantRisk(100, 5)))
    assert "RISKY_MERCHANT" not in codes(evidence(merchant=MerchantRisk(10, 9)))  # too few


def test_list_hits_weigh_and_are_labelled() -> None:
    block = ListHit("BLOCK", "MERCHANT", "M001", "chargebacks")
    allow = ListHit("ALLOW", "ACCOUNT", "A1")
    result = assess(evidence(list_hits=(block, allow)))
    assert result.blocked and result.allowed
    assert result.list_hits == ("ALLOW:ACCOUNT:A1", "BLOCK:MERCHANT:M001")
    texts = [r.render() for r in result.reasons]
    assert "+100 merchant M001 is on the block list (chargebacks)" in texts
    assert "-30 account A1 is on the allow list" in texts


def test_score_stays_between_0_and_100() -> None:
    allow = ListHit("ALLOW", "ACCOUNT", "A1")
    assert assess(evidence(list_hits=(allow,))).score == 0
    block = ListHit("BLOCK", "ACCOUNT", "A1")
    assert assess(evidence("5000.00", alerts=(HIGH_AMOUNT,), list_hits=(block,))).score == 100


def test_an_alert_before_its_transaction_is_scored_without_tx_context() -> None:
    alone = Evidence("t1", "A1", Decimal("5000.00"), alerts=(HIGH_AMOUNT,), history=USUAL)
    found = codes(alone)
    assert found == {"RULE:HIGH_AMOUNT": 40, "UNUSUAL_AMOUNT": 15}
