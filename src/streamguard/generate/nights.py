"""Night-only episodes that came up by day, kept for the next night (22:00-06:00 São Paulo).

Night spending can only happen at night, yet its share of the fraud must hold over a day. An
episode drawn by day is therefore owed to the next night and started at a uniformly random
instant of it: a count per night, so a day of owed episodes costs a few bytes, whatever the rate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from streamguard.generate.clock import LOCAL_TZ, NIGHT_END_HOUR, NIGHT_START_HOUR


def next_night(ts_ms: int) -> tuple[int, int]:
    """(start, end) in epoch ms of the first night beginning after `ts_ms`."""
    local = datetime.fromtimestamp(ts_ms / 1000, tz=LOCAL_TZ)
    start = local.replace(hour=NIGHT_START_HOUR, minute=0, second=0, microsecond=0)
    if start <= local:
        start += timedelta(days=1)
    end = (start + timedelta(days=1)).replace(hour=NIGHT_END_HOUR)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


class NightDebt:
    """Episodes owed to coming nights; `due` hands out their start times as time goes by."""

    def __init__(self) -> None:
        self._owed: dict[tuple[int, int], int] = {}  # (night start, end) -> episodes
        self._cursor: dict[tuple[int, int], int] = {}  # how far into the night we handed out

    def owe(self, day_ts_ms: int) -> None:
        """An episode drawn at `day_ts_ms` (by day) goes to the next night."""
        night = next_night(day_ts_ms)
        self._owed[night] = self._owed.get(night, 0) + 1

    def due(self, t_from: int, t_to: int, rng: np.random.Generator) -> list[int]:
        """Start times, within [t_from, t_to], of the owed episodes whose turn has come."""
        starts: list[int] = []
        for night in list(self._owed):
            begin, end = night
            low = max(t_from, begin, self._cursor.get(night, begin))
            high = min(t_to, end)
            if high <= low:
                if t_to >= end:  # a night we jumped over entirely: pay it now
                    starts.extend([t_to] * self._owed.pop(night))
                    self._cursor.pop(night, None)
                continue
            count = self._owed[night]
            paid = count if high >= end else int(rng.binomial(count, (high - low) / (end - low)))
            starts.extend(rng.integers(low, high + 1, paid).tolist())
            self._cursor[night] = high
            if count - paid:
                self._owed[night] = count - paid
            else:
                del self._owed[night]
                self._cursor.pop(night, None)
        return starts

    @property
    def owed(self) -> int:
        """Episodes still waiting for their night."""
        return sum(self._owed.values())
