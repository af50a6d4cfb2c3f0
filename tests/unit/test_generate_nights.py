"""Night-only episodes drawn by day are paid back during the next night."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from streamguard.generate import clock
from streamguard.generate.nights import NightDebt, next_night


def local_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=clock.LOCAL_TZ).timestamp() * 1000)


def test_next_night_is_22_to_6_local() -> None:
    start, end = next_night(local_ms(2025, 6, 2, 14, 0))
    assert (start, end) == (local_ms(2025, 6, 2, 22, 0), local_ms(2025, 6, 3, 6, 0))
    assert next_night(local_ms(2025, 6, 2, 23, 0))[0] == local_ms(2025, 6, 3, 22, 0)


def test_owed_episodes_start_within_the_next_night_and_all_are_paid() -> None:
    debt, rng = NightDebt(), np.random.default_rng(1)
    for _ in range(1000):
        debt.owe(local_ms(2025, 6, 2, 12, 0))
    starts: list[int] = []
    t = local_ms(2025, 6, 2, 12, 0)
    while t < local_ms(2025, 6, 3, 12, 0):  # ten-minute chunks through a day
        starts += debt.due(t, t + 600_000, rng)
        t += 600_000
    assert len(starts) == 1000 and debt.owed == 0
    assert all(clock.is_night(s) for s in starts)
    hours = np.bincount([clock.local_hour(s) for s in starts], minlength=24)
    assert hours[22] > 80 and hours[5] > 80  # spread over the whole night, not bunched


def test_a_night_jumped_over_is_paid_at_once() -> None:
    debt, rng = NightDebt(), np.random.default_rng(1)
    debt.owe(local_ms(2025, 6, 2, 12, 0))
    assert debt.due(local_ms(2025, 6, 2, 12, 0), local_ms(2025, 6, 4, 12, 0), rng) != []
    assert debt.owed == 0
