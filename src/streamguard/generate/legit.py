"""Legitimate traffic, drawn with numpy one chunk at a time: who pays, where, what and how much.

Accounts are drawn by activity, each at least `min_gap_ms` from its own previous transaction
(and none while it is under attack: `busy_until`). The category follows the hour (day or night
weights), the merchant the category, the amount the category's log-normal times the account's
income, the channel the category's mix; the device is the main one 80% of the time.
"""

from __future__ import annotations

import numpy as np

from streamguard.generate import clock
from streamguard.generate.merchants import CATEGORIES
from streamguard.generate.population import MAIN_DEVICE_SHARE, Population

#: Legit amounts at night stay under this (the NIGHT_SPENDING rule starts at R$ 1,000).
NIGHT_LEGIT_CAP_CENTS = 90_000
LEGIT_MAX_CENTS = 2_000_000
LEGIT_MIN_CENTS = 50
#: Redraws of an account that is busy before accepting it anyway (and counting it as crowded).
#: The first few follow activity; later ones are uniform, since busy accounts are the active ones.
REDRAWS = 40
WEIGHTED_REDRAWS = 4


def _cumulative(weights: np.ndarray) -> np.ndarray:
    cum = np.cumsum(weights, axis=-1)
    return cum / cum[..., -1:]


class LegitTraffic:
    """Draws legitimate transactions for given times; shares `busy_until` with the engine."""

    def __init__(
        self,
        population: Population,
        rng: np.random.Generator,
        busy_until: np.ndarray,
        min_gap_ms: int,
    ):
        self.population = population
        self.rng = rng
        self.busy_until = busy_until
        self.min_gap_ms = min_gap_ms
        self.crowded = 0
        self._tables()

    def _tables(self) -> None:
        self.day_cum = _cumulative(np.array([c.day for c in CATEGORIES]))
        self.night_cum = _cumulative(np.array([c.night for c in CATEGORIES]))
        self.log_median = np.log([c.median_brl * 100 for c in CATEGORIES])
        self.sigma = np.array([c.sigma for c in CATEGORIES])
        self.channel_cum = _cumulative(np.array([c.channels for c in CATEGORIES]))
        self.by_category = self.population.merchants_by_category
        self.log_income = np.log(self.population.income)

    def draw(self, ts: np.ndarray) -> dict[str, np.ndarray]:
        """Vectorised legitimate transactions at the times `ts`."""
        n, rng = len(ts), self.rng
        account = self._accounts(ts)
        night = clock.is_night_hour(clock.local_hours(ts))
        u = rng.random(n)
        category = np.where(
            night,
            np.searchsorted(self.night_cum, u, "right"),
            np.searchsorted(self.day_cum, u, "right"),
        )
        category = np.minimum(category, len(CATEGORIES) - 1)
        merchant = self.by_category[category, rng.integers(0, self.by_category.shape[1], n)]
        log_cents = (
            self.log_median[category]
            + self.sigma[category] * rng.standard_normal(n)
            + self.log_income[account]
        )
        cents = np.clip(np.rint(np.exp(log_cents)), LEGIT_MIN_CENTS, LEGIT_MAX_CENTS).astype(
            np.int64
        )
        over = night & (cents > NIGHT_LEGIT_CAP_CENTS)
        if over.any():
            cents[over] = (NIGHT_LEGIT_CAP_CENTS * rng.uniform(0.3, 1.0, int(over.sum()))).astype(
                np.int64
            )
        channel = (rng.random(n)[:, None] > self.channel_cum[category]).sum(axis=1)
        device = np.where(
            rng.random(n) < MAIN_DEVICE_SHARE,
            0,
            (rng.random(n) * self.population.n_devices[account]).astype(np.int64),
        )
        return {
            "account": account,
            "cents": cents,
            "channel": channel,
            "merchant": merchant,
            "device": device,
        }

    def _accounts(self, ts: np.ndarray) -> np.ndarray:
        """Accounts by activity, each free at its time and `min_gap_ms` from its other slots.

        Needs more than rate x 21 s accounts; with 32 per tx/s two thirds are busy at any time
        and about one draw in 10^7 has to be accepted crowded."""
        n, rng, cum = len(ts), self.rng, self.population.activity_cum
        account = np.minimum(np.searchsorted(cum, rng.random(n), "right"), len(cum) - 1)
        for round_ in range(REDRAWS):
            bad = self.busy_until[account] > ts
            order = np.lexsort((ts, account))
            sorted_acc, sorted_ts = account[order], ts[order]
            close = (sorted_acc[1:] == sorted_acc[:-1]) & (
                sorted_ts[1:] - sorted_ts[:-1] < self.min_gap_ms
            )
            bad[order[1:][close]] = True
            redraw = int(bad.sum())
            if not redraw:
                break
            if round_ < WEIGHTED_REDRAWS:
                fresh = np.searchsorted(cum, rng.random(redraw), "right")
            else:
                fresh = rng.integers(0, len(cum), redraw)
            account[bad] = np.minimum(fresh, len(cum) - 1)
        else:
            self.crowded += redraw
        np.maximum.at(self.busy_until, account, ts + self.min_gap_ms)
        return account
