"""Detection quality: precision and recall per rule, per scenario and overall."""

from __future__ import annotations

from streamguard.bench.quality import Outcome, detection_quality, outcomes_from
from streamguard.domain.quality import Quality


def _outcomes() -> list[Outcome]:
    hi = frozenset({"HIGH_AMOUNT"})
    vel = frozenset({"HIGH_VELOCITY"})
    return [
        # two high-amount frauds, both caught
        Outcome("h1", "high_amount", True, hi, incident="high_amount:A"),
        Outcome("h2", "high_amount", True, hi, incident="high_amount:B"),
        # one velocity burst of 5 on account C: the rule fires on the 4th and 5th only
        *[
            Outcome(
                f"v{i}",
                "velocity_burst",
                True,
                vel if i >= 4 else frozenset(),
                None,
                "velocity_burst:C",
            )
            for i in range(1, 6)
        ],
        # a blocklisted account: no rule, but the decision blocks it
        Outcome("b1", "blocklist", True, frozenset(), "BLOCK", "blocklist:D"),
        # an account takeover nobody caught
        Outcome("t1", "account_takeover", True, frozenset(), "APPROVE", "account_takeover:E"),
        # legitimate traffic with one false alarm from HIGH_AMOUNT
        Outcome("l1", rules=hi),
        Outcome("l2"),
        Outcome("l3"),
    ]


def test_score_ratios_and_undefined_cases() -> None:
    assert Quality(3, 1, 2).precision == 0.75
    assert Quality(3, 1, 2).recall == 0.6
    assert Quality(0, 0, 0).precision is None
    assert Quality(0, 0, 0).recall is None


def test_per_rule_precision_and_target_recall() -> None:
    quality = detection_quality(_outcomes(), rules=["HIGH_AMOUNT", "HIGH_VELOCITY", "CARD_TESTING"])
    high = quality["per_rule"]["HIGH_AMOUNT"]
    assert high["alerts"] == 3
    assert high["false_positives"] == 1
    assert high["precision"] == round(2 / 3, 4)
    assert high["recall"] == 1.0
    velocity = quality["per_rule"]["HIGH_VELOCITY"]
    assert velocity["precision"] == 1.0
    assert velocity["recall"] == 0.4  # 2 of the burst's 5 transactions
    assert velocity["incident_recall"] == 1.0  # but the burst itself was caught
    # a rule that never fired and whose scenario was absent has nothing to report
    assert quality["per_rule"]["CARD_TESTING"]["alerts"] == 0
    assert quality["per_rule"]["CARD_TESTING"]["recall"] is None


def test_per_scenario_counts_decisions_as_catches() -> None:
    scenarios = detection_quality(_outcomes())["per_scenario"]
    assert scenarios["blocklist"]["recall"] == 1.0
    assert scenarios["blocklist"]["caught_by"] == {}
    assert scenarios["account_takeover"]["recall"] == 0.0
    assert scenarios["velocity_burst"]["recall"] == 0.4
    assert scenarios["velocity_burst"]["incident_recall"] == 1.0
    assert scenarios["velocity_burst"]["caught_by"] == {"HIGH_VELOCITY": 2}
    assert scenarios["legit"]["false_positive_rate"] == round(1 / 3, 4)


def test_overall_by_alerts_and_by_pipeline() -> None:
    overall = detection_quality(_outcomes())["overall"]
    assert overall["transactions"] == 12
    assert overall["fraud"] == 9
    assert overall["by_alerts"]["true_positives"] == 4
    assert overall["by_alerts"]["false_positives"] == 1
    assert overall["by_pipeline"]["true_positives"] == 5  # plus the blocklist decision
    assert overall["by_pipeline"]["recall"] == round(5 / 9, 4)
    assert overall["incidents"] == 5
    assert overall["incidents_caught"] == 4


def test_outcomes_from_joins_labels_alerts_and_decisions() -> None:
    outcomes = outcomes_from(
        [("t1", "A"), ("t2", "B"), ("t3", "A")],
        labels={"t1": ("high_amount", True), "t3": ("legit", False)},
        alerts={"t1": frozenset({"HIGH_AMOUNT"})},
        actions={"t1": "BLOCK"},
    )
    by_id = {o.transaction_id: o for o in outcomes}
    assert by_id["t1"].incident == "high_amount:A"
    assert by_id["t1"].flagged
    assert by_id["t2"].scenario == "legit" and not by_id["t2"].is_fraud
    assert by_id["t2"].incident is None
    assert not by_id["t3"].flagged


def test_quiet_legit_transactions_change_totals_not_precision() -> None:
    plain = detection_quality(_outcomes())
    padded = detection_quality(_outcomes(), quiet_legit=997)
    assert padded["overall"]["transactions"] == 12 + 997
    assert padded["overall"]["by_alerts"] == plain["overall"]["by_alerts"]
    assert padded["per_scenario"]["legit"]["transactions"] == 1000
    assert padded["per_scenario"]["legit"]["false_positive_rate"] == 0.001
