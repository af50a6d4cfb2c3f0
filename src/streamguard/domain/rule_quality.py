"""How good each rule is, in values: precision from analysts' resolutions and from labels."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Precision:
    """Of the judged alerts (or cases) of a rule, the share that was fraud."""

    fraud: int
    judged: int
    #: fraud / judged; None when nothing was judged (no precision, not 0). Derived.
    value: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", self.fraud / self.judged if self.judged else None)


def from_resolutions(confirmed_fraud: int, false_positive: int, legitimate: int) -> Precision:
    """Analysts' verdicts: confirmed fraud counts for the rule, the other two against it."""
    return Precision(confirmed_fraud, confirmed_fraud + false_positive + legitimate)


def sparkline(values: list[int], width: int = 160, height: int = 28) -> str:
    """SVG polyline points for a row of counts, the largest at the top (empty for no values)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values)
    )
