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


# -- card tests: judged whole in the step whose window holds the cash-out -----------------------

WINDOW = (1000.0, 1060.0)  # the measured window [start, end), epoch seconds


def _charges(account: str, first_s: float, *, tests: int = 3, gap_s: float = 22) -> list:
    """A card test on `account`: `tests` charges of R$ 1-9 `gap_s` apart, then the cash-out."""
    from decimal import Decimal

    from streamguard.bench.quality import CardCharge

    charges = [
        CardCharge(f"{account}-t{i}", account, first_s + i * gap_s, Decimal("4.99"))
        for i in range(tests)
    ]
    cash_out = CardCharge(f"{account}-cash", account, first_s + tests * gap_s, Decimal("1899.00"))
    return [*charges, cash_out]


def test_a_card_test_cashed_out_in_the_window_counts_whole() -> None:
    from streamguard.bench.quality import card_tests_in_window

    # tests at 950, 972, 994 (before the window), cash-out at 1016: all four are judged
    charges = _charges("A", 950.0)
    assert card_tests_in_window(charges, WINDOW) == {c.transaction_id for c in charges}


def test_a_card_test_cashed_out_after_the_window_does_not_count() -> None:
    from streamguard.bench.quality import card_tests_in_window

    # tests at 1020, 1042 (in the window), 1064, cash-out at 1086: the rule could not fire yet
    assert card_tests_in_window(_charges("B", 1020.0), WINDOW) == set()
    # the window's end is exclusive: a cash-out at exactly 1060 belongs to the next window
    assert card_tests_in_window(_charges("C", 994.0), WINDOW) == set()
    # cut short by the generator's stop: test charges only, no cash-out
    assert card_tests_in_window(_charges("D", 1010.0)[:-1], WINDOW) == set()


def test_each_cash_out_closes_its_own_episode_on_an_account() -> None:
    from streamguard.bench.quality import card_tests_in_window

    # one account attacked twice: the first cash-out (at 976) is before the window, so its
    # tests are not carried into the second episode, whose cash-out at 1050 is in it
    first, second = _charges("E", 910.0), _charges("E", 984.0)
    assert first[-1].at_s < WINDOW[0] <= second[-1].at_s < WINDOW[1]
    judged = card_tests_in_window([*second, *first], WINDOW)  # any order in, time order used
    assert judged == {c.transaction_id for c in second}


def test_judge_card_tests_narrows_the_rows_and_says_by_how_much() -> None:
    from streamguard.bench.quality import judge_card_tests

    whole = _charges("A", 950.0)  # 3 tests before the window, cash-out in it
    unfinished = _charges("B", 1020.0)  # 2 tests in the window, the rest after it
    charges = [*whole, *unfinished]
    rows = [("h1", "H"), *[(c.transaction_id, c.account_id) for c in charges]]
    kept, counts = judge_card_tests(rows, charges, WINDOW)
    assert kept == [("h1", "H"), *[(c.transaction_id, "A") for c in whole]]
    assert counts == {"looked_back": 3, "left_out": 2}


def test_card_testing_recall_is_judged_on_whole_episodes() -> None:
    from streamguard.bench.quality import judge_card_tests

    card = frozenset({"CARD_TESTING"})
    whole, unfinished = _charges("A", 950.0), _charges("B", 1020.0)
    charges = [*whole, *unfinished]
    rows = [(c.transaction_id, c.account_id) for c in charges]
    kept, _ = judge_card_tests(rows, charges, WINDOW)
    labels = {c.transaction_id: ("card_testing", True) for c in charges}
    alerts = {whole[-1].transaction_id: card}  # the rule alerts on the cash-out only
    quality = detection_quality(outcomes_from(kept, labels, alerts, {}), rules=["CARD_TESTING"])
    scenario = quality["per_scenario"]["card_testing"]
    assert scenario["incidents"] == 1
    assert scenario["incident_recall"] == 1.0  # B's unfinished test is not a miss
    assert scenario["recall"] == 0.25  # by design: the test charges themselves pass
    assert quality["per_rule"]["CARD_TESTING"]["incident_recall"] == 1.0
