"""The wall clock the live modes read, as a value: tests pass a simulated one, so that a rate
or the daily cycle is checked against time the test controls, never against a loaded machine."""

from __future__ import annotations

import time
from typing import Protocol


class WallClock(Protocol):
    """Elapsed time for pacing, the current instant for stamping events, and a way to wait."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        ...

    def now_ms(self) -> int:
        """The current instant, epoch milliseconds UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The machine's clock."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def now_ms(self) -> int:
        """time.time() in epoch milliseconds."""
        return int(time.time() * 1000)

    def sleep(self, seconds: float) -> None:
        """time.sleep()."""
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
