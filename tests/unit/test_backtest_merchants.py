"""A merchant's counters at a transaction's time: the ledger's counts plus the catalog's flags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streamguard.backtest.merchants import MerchantClock
from streamguard.domain.scoring import MerchantRisk

NOON = datetime(2026, 11, 2, 15, tzinfo=timezone.utc)


def test_counts_before_the_period_plus_the_periods_up_to_the_transaction() -> None:
    clock = MerchantClock({"M1": (100, 7)}, {"T3": ("M1", 3), "T9": ("M2", 1)})
    assert clock.at("T3", NOON) == ("M1", MerchantRisk(103, 7))
    assert clock.at("T9", NOON) == ("M2", MerchantRisk(1, 0))  # nothing before the period
    assert clock.at("unstored", NOON) is None


def test_only_the_catalogs_flags_before_the_transaction_count() -> None:
    clock = MerchantClock({"M1": (100, 7)}, {"T3": ("M1", 3)})
    clock.flag("M1", NOON - timedelta(seconds=1))
    clock.flag("M1", NOON)  # at the same moment: not before it
    assert clock.at("T3", NOON) == ("M1", MerchantRisk(103, 8))
    fresh = clock.for_catalog()  # another catalog starts with no flag of this one's
    assert fresh.at("T3", NOON) == ("M1", MerchantRisk(103, 7))
