"""How well a detector did against the known truth: counts, precision, recall and F1.

The benchmark's quality report (`bench/quality.py`) and the backtest's comparison
(`domain/backtest.py`) score with this one type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quality:
    """Counts of a detector against the known truth, with the ratios (None when undefined)."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        """Of the judged flags, the share that was fraud."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        """Of the known fraud, the share flagged."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else None

    @property
    def f1(self) -> float | None:
        """The harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready counts and ratios (4 decimals)."""
        return {
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "precision": ratio4(self.precision),
            "recall": ratio4(self.recall),
            "f1": ratio4(self.f1),
        }


def ratio4(value: float | None) -> float | None:
    """A ratio rounded to 4 decimals for JSON (None stays None)."""
    return None if value is None else round(value, 4)
