"""The merchants' counters as they stood at each transaction's time, not as they are today.

Live, a transaction is scored with its merchant's counters at that moment: the merchant's
stored transactions so far, and how many of them the pipeline flagged. A backtest counts the
same from the ledger: the merchant's transactions before the period, plus those of the period
up to this one (itself included, as the live service stores a transaction before deciding it);
flagged are those before the period as stored, plus the catalog's own flags in the period
before it (its verdicts, not the live ones).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from streamguard.domain.scoring import MerchantRisk


@dataclass
class MerchantClock:
    """The counts read from the ledger once, and one catalog's flags as it decides."""

    before: dict[str, tuple[int, int]]  # merchant -> (stored, flagged) before the period
    rank: dict[str, tuple[str, int]]  # transaction -> (merchant, its place in the period)
    flagged: dict[str, list[datetime]] = field(default_factory=dict)

    def at(self, transaction_id: str, at: datetime) -> tuple[str, MerchantRisk] | None:
        """The transaction's merchant and its counters at `at` (None: no merchant known)."""
        found = self.rank.get(transaction_id)
        if found is None:
            return None
        merchant, upto = found
        stored, flagged = self.before.get(merchant, (0, 0))
        earlier = bisect.bisect_left(self.flagged.get(merchant, []), at)
        return merchant, MerchantRisk(stored + upto, flagged + earlier)

    def flag(self, merchant: str, at: datetime) -> None:
        """This catalog flagged (REVIEW or BLOCK) one of the merchant's transactions at `at`."""
        bisect.insort(self.flagged.setdefault(merchant, []), at)

    def for_catalog(self) -> MerchantClock:
        """The same counts with no flag of any catalog yet."""
        return MerchantClock(self.before, self.rank)
