"""Whether a transaction's event time is believable, judged against its Kafka append time.

The topics use LogAppendTime, so the broker stamps every record when it stores it: a clock that
no sender controls. A transaction claiming to have happened well after it reached Kafka (a
broken terminal clock, microseconds sent as milliseconds, a forged message) would push event
time, and with it the watermark, ahead for everyone; one claiming to be years older than its
arrival (seconds sent as milliseconds) is just as wrong. Both are refused, by the decision
service (dead letter) and by the rules job (its `transactions` view), with the same bounds:
this module, rendered into the rules' SQL by rules/engine.py.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Dead-letter reasons, the first words of the message (rules/README.md lists them).
AHEAD_OF_ARRIVAL = "event_time_ahead_of_arrival"
BEHIND_ARRIVAL = "event_time_behind_arrival"

DEFAULT_MAX_FUTURE_SKEW_S = 5.0
DEFAULT_MAX_EVENT_AGE_S = 3650 * 86_400


@dataclass(frozen=True)
class EventTimeBounds:
    """How far an event time may lie ahead of, or behind, the time Kafka appended it."""

    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    max_age_s: int = DEFAULT_MAX_EVENT_AGE_S

    def __post_init__(self) -> None:
        # Flink's TIMESTAMPADD takes an INT: the skew in ms and the age in s must fit one.
        if not 0 <= self.max_future_skew_s <= 86_400:
            raise ValueError(
                f"max_future_skew_s must be within 0..86400, got {self.max_future_skew_s}"
            )
        if not 0 < self.max_age_s < 2**31:
            raise ValueError(f"max_age_s must be within 1..{2**31 - 1}, got {self.max_age_s}")

    @property
    def max_future_skew_ms(self) -> int:
        """The future skew in whole milliseconds (the precision of both clocks)."""
        return round(self.max_future_skew_s * 1000)

    def violation(self, ts_ms: int, append_ms: int | None) -> str | None:
        """Why this event time is not believable, or None when it is (or cannot be judged)."""
        if append_ms is None:  # no broker stamp (a CreateTime topic): nothing to judge against
            return None
        ahead_ms = ts_ms - append_ms
        if ahead_ms > self.max_future_skew_ms:
            return (
                f"{AHEAD_OF_ARRIVAL}: event time is {ahead_ms / 1000:.3f} s after Kafka appended "
                f"it, more than STREAMGUARD_MAX_FUTURE_SKEW_S ({self.max_future_skew_s:g} s)"
            )
        if -ahead_ms > self.max_age_s * 1000:
            return (
                f"{BEHIND_ARRIVAL}: event time is {-ahead_ms / 86_400_000:.1f} days before Kafka "
                f"appended it, more than STREAMGUARD_MAX_EVENT_AGE_S ({self.max_age_s} s)"
            )
        return None

    def accepts(self, ts_ms: int, append_ms: int | None) -> bool:
        """True when the event time is within the bounds (the hot path: no message built)."""
        return append_ms is None or (
            append_ms - self.max_age_s * 1000 <= ts_ms <= append_ms + self.max_future_skew_ms
        )
