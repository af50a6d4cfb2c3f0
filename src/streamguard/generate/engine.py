"""The generator's core: legitimate traffic drawn in vectorised chunks, with fraud woven in.

A mode hands `Engine.take` the time slots of the next chunk (simulated for batch, the wall
clock for stream and realistic). The engine starts fraud episodes over that stretch of time in
proportion to the traffic, fits their due transactions into the chunk, and draws legitimate
transactions for the other slots with numpy, one array per field.

Two guarantees keep legitimate traffic from tripping the rules by accident:
- a legitimate account never transacts twice within `min_legit_gap_s` (21 s by default), so four
  legitimate transactions always span more than 60 s and HIGH_VELOCITY cannot fire on them;
- an account under attack gets no legitimate transaction until its episode's quiet time is over
  (after a trip far away, until the way home would be slower than 450 km/h).
Legit traffic stays in the home city, and at night legit amounts stay under R$ 900.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from streamguard.generate import clock
from streamguard.generate.defaults import (
    DEFAULT_ACCOUNTS,
    DEFAULT_FRAUD_RATE,
    DEFAULT_POPULATION_SEED,
)
from streamguard.generate.legit import LegitTraffic
from streamguard.generate.nights import NightDebt
from streamguard.generate.population import MAX_DEVICES, Place, Population
from streamguard.generate.scenarios import (
    BLOCKLIST,
    CODE,
    FRAUD_SCENARIOS,
    NIGHT_SPENDING,
    SCENARIOS,
    Episode,
    Event,
    ScenarioKit,
    catalogue,
    wants_mule,
)

DEFAULT_MIN_LEGIT_GAP_S = 21.0
_MODE_CODES = {"batch": 1, "stream": 2, "realistic": 3, "attack": 4, "sample": 5}


def parse_mix(text: str) -> dict[str, float]:
    """'velocity_burst=2,card_testing=1' -> weights; names not given get 0."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        mix[name.strip()] = float(weight) if weight else 1.0
    return normalise_mix(mix)


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Weights over the fraud scenarios, summing to 1; unknown names are an error."""
    unknown = set(mix) - set(FRAUD_SCENARIOS)
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(FRAUD_SCENARIOS)}"
        )
    if any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("scenario weights must be >= 0 and not all 0")
    total = sum(mix.values())
    return {name: mix.get(name, 0.0) / total for name in FRAUD_SCENARIOS}


EQUAL_MIX: dict[str, float] = normalise_mix({name: 1.0 for name in FRAUD_SCENARIOS})


@dataclass(frozen=True)
class GeneratorConfig:
    """What a run generates: population, fraud rate and mix (share of fraud transactions)."""

    accounts: int = DEFAULT_ACCOUNTS
    fraud_rate: float = DEFAULT_FRAUD_RATE
    mix: Mapping[str, float] = field(default_factory=lambda: dict(EQUAL_MIX))
    population_seed: int = DEFAULT_POPULATION_SEED
    min_legit_gap_s: float = DEFAULT_MIN_LEGIT_GAP_S
    #: The bench's card tests: 3 charges and the cash-out within 63-69 s, so that an episode
    #: fits a step (scenarios.short_card_testing). Off for every other use.
    short_card_tests: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.fraud_rate < 1:
            raise ValueError("fraud_rate must be in [0, 1)")
        object.__setattr__(self, "mix", normalise_mix(self.mix))


@dataclass
class Chunk:
    """Transactions in output order, one array per field (see wire.render)."""

    ts: np.ndarray
    account: np.ndarray
    cents: np.ndarray
    channel: np.ndarray
    merchant: np.ndarray
    scenario: np.ndarray
    device: np.ndarray  # the account's device slot, or -1: see `custom`
    custom: dict[int, Place] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)


class Engine:
    """The stateful generator: population, random stream, pending fraud, per-account quiet."""

    def __init__(self, config: GeneratorConfig, *, seed: int | None = None, mode: str = "batch"):
        self.config = config
        self.population = Population(config.accounts, config.population_seed)
        sequence = np.random.SeedSequence(seed, spawn_key=(_MODE_CODES[mode],))
        self.rng = np.random.default_rng(sequence)
        self.id_prefix = self._id_prefix()
        self.kit = ScenarioKit(self.population, self.rng)
        self.builders, self.mean_fraud_tx = catalogue(short_card_tests=config.short_card_tests)
        self.busy_until = np.zeros(self.population.total, dtype=np.int64)
        self.min_gap_ms = int(config.min_legit_gap_s * 1000)
        self.pending: list[tuple[int, int, Event]] = []
        self._tiebreak = 0
        self.scheduled_until: int | None = None
        self.scheduling = True
        self.night_debt = NightDebt()
        self.tx_by_scenario = np.zeros(len(SCENARIOS), dtype=np.int64)
        self.episodes = dict.fromkeys(FRAUD_SCENARIOS, 0)
        self.next_seq = 0
        self.legit = LegitTraffic(self.population, self.rng, self.busy_until, self.min_gap_ms)

    def _id_prefix(self) -> str:
        """The first 24 characters of this run's transaction ids (UUID v4 layout)."""
        a, b, c, d = (int(x) for x in self.rng.integers(0, [2**32, 2**16, 2**12, 2**14]))
        return f"{a:08x}-{b:04x}-4{c:03x}-{0x8000 | d:04x}-"

    # -- fraud -------------------------------------------------------------------------------

    def _schedule(self, t_from: int, t_to: int, fraud_tx: float) -> None:
        """Start episodes over [t_from, t_to] worth `fraud_tx` fraud transactions on average."""
        span = max(t_to - t_from, 0)
        for name in FRAUD_SCENARIOS:
            weight = self.config.mix[name]
            if weight <= 0:
                continue
            count = int(self.rng.poisson(fraud_tx * weight / self.mean_fraud_tx[name]))
            starts = self.rng.integers(t_from, t_from + span + 1, count).tolist()
            if name == NIGHT_SPENDING:
                starts = self._night_starts(starts, t_from, t_to)
            for start in starts:
                self.start_episode(name, start)

    def _night_starts(self, starts: list[int], t_from: int, t_to: int) -> list[int]:
        """Night episodes drawn by day are owed to the next night; owed ones whose time has
        come start now."""
        kept = []
        for start in starts:
            if clock.is_night(start):
                kept.append(start)
            else:
                self.night_debt.owe(start)
        return kept + self.night_debt.due(t_from, t_to, self.rng)

    def start_episode(
        self, name: str, start: int, account: int | None = None, *, queue: bool = True
    ) -> Episode | None:
        """Build one episode (on `account`, or a free one); queue its transactions if asked."""
        if account is None:
            account = self._victim(name, start)
            if account is None:
                return None
        episode = self.builders[name](self.kit, account, start)
        self.busy_until[account] = max(int(self.busy_until[account]), episode.quiet_until_ms)
        self.episodes[name] += 1
        if not queue:
            return episode
        for event in episode.events:
            heapq.heappush(self.pending, (event.ts_ms, self._tiebreak, event))
            self._tiebreak += 1
        return episode

    def _victim(self, name: str, start: int) -> int | None:
        pop = self.population
        if wants_mule(self.kit, name):  # mules only ever commit fraud: no need to wait
            return int(self.rng.integers(pop.size, pop.total))
        for _ in range(20):
            account = int(self.rng.integers(0, pop.size))
            if self.busy_until[account] <= start:
                return account
        return None

    def _due(self, t_to: int, drain: bool) -> list[Event]:
        due = []
        while self.pending and (drain or self.pending[0][0] <= t_to):
            due.append(heapq.heappop(self.pending)[2])
        return due

    # -- the chunk ---------------------------------------------------------------------------

    def take(self, slot_ts: np.ndarray, *, replace: bool, drain: bool = False) -> Chunk:
        """The next chunk over the time slots `slot_ts` (sorted epoch ms).

        replace=True (stream, realistic): exactly len(slot_ts) transactions; a due fraud
        transaction takes the first free slot at or after its time. replace=False (batch):
        the slots are legitimate transactions and fraud is inserted at its own time.
        drain=True: the last chunk; every pending fraud transaction goes in and the chunk
        still holds len(slot_ts) transactions (legit slots give way at the end).
        """
        n = len(slot_ts)
        t_to = int(slot_ts[-1])
        t_from = self.scheduled_until if self.scheduled_until is not None else int(slot_ts[0])
        if self.scheduling:
            rate = self.config.fraud_rate
            self._schedule(t_from, t_to, rate * n if replace else rate / (1 - rate) * n)
        self.scheduled_until = t_to
        due = self._due(t_to, drain)
        if replace:
            ts, fraud_pos, due = self._fit(slot_ts, due)
        else:
            due = due[:n] if drain else due
            legit_ts = slot_ts[: n - len(due)] if drain else slot_ts
            ts, fraud_pos = self._merge(legit_ts, due)
        return self._assemble(ts, fraud_pos, due)

    def _fit(self, slot_ts: np.ndarray, due: list[Event]) -> tuple[np.ndarray, np.ndarray, list]:
        """Give each due fraud transaction the first free slot at or after its time."""
        n = len(slot_ts)
        if not due:
            return slot_ts, np.zeros(0, dtype=np.int64), due
        wanted = np.searchsorted(slot_ts, [e.ts_ms for e in due], side="left")
        ramp = np.arange(len(due))
        pos = np.maximum.accumulate(wanted - ramp) + ramp
        fits = int(np.searchsorted(pos, n, side="left"))
        for event in due[fits:]:  # no room left in this chunk: next one
            heapq.heappush(self.pending, (event.ts_ms, self._tiebreak, event))
            self._tiebreak += 1
        return slot_ts, pos[:fits], due[:fits]

    @staticmethod
    def _merge(legit_ts: np.ndarray, due: list[Event]) -> tuple[np.ndarray, np.ndarray]:
        fraud_ts = np.array([e.ts_ms for e in due], dtype=np.int64)
        both = np.concatenate([legit_ts, fraud_ts])
        order = np.argsort(both, kind="stable")
        fraud_pos = np.nonzero(order >= len(legit_ts))[0]
        return both[order], fraud_pos

    def _assemble(self, ts: np.ndarray, fraud_pos: np.ndarray, due: list[Event]) -> Chunk:
        n = len(ts)
        is_legit = np.ones(n, dtype=bool)
        is_legit[fraud_pos] = False
        legit = self.legit.draw(ts[is_legit])
        chunk = Chunk(
            ts=np.asarray(ts, dtype=np.int64),
            account=np.empty(n, dtype=np.int64),
            cents=np.empty(n, dtype=np.int64),
            channel=np.empty(n, dtype=np.int64),
            merchant=np.empty(n, dtype=np.int64),
            scenario=np.zeros(n, dtype=np.int8),
            device=np.empty(n, dtype=np.int64),
        )
        for name, values in legit.items():
            getattr(chunk, name)[is_legit] = values
        for row, event in zip(fraud_pos.tolist(), due, strict=True):
            chunk.account[row] = event.account
            chunk.cents[row] = event.cents
            chunk.channel[row] = event.channel
            chunk.merchant[row] = event.merchant
            chunk.scenario[row] = event.scenario
            if event.place is None:
                chunk.device[row] = 0
            else:
                chunk.device[row] = -1
                chunk.custom[row] = event.place
        self.tx_by_scenario += np.bincount(chunk.scenario, minlength=len(SCENARIOS))
        return chunk

    def drop_pending(self) -> int:
        """Forget every queued fraud transaction (the attacks in flight at a stop); how many.

        They are due in the future: sent now they would carry event times ahead of the clock,
        which the pipeline refuses (domain/event_time.py). Never sent, they are never labelled.
        """
        dropped = len(self.pending)
        self.pending.clear()
        return dropped

    def events_chunk(self, events: list[Event]) -> Chunk:
        """A chunk of exactly these events at their own times (attack mode)."""
        events = sorted(events, key=lambda event: event.ts_ms)
        ts = np.array([event.ts_ms for event in events], dtype=np.int64)
        return self._assemble(ts, np.arange(len(events)), events)

    # -- bookkeeping -------------------------------------------------------------------------

    def assign_ids(self, count: int) -> range:
        """Sequence numbers for the next `count` transactions (the end of their ids)."""
        first = self.next_seq
        self.next_seq += count
        return range(first, first + count)

    def transaction_id(self, seq: int) -> str:
        """The transaction id of sequence number `seq`."""
        return f"{self.id_prefix}{seq:012x}"

    @property
    def crowded(self) -> int:
        """Legit transactions that had to come closer than the per-account gap (rate too high)."""
        return self.legit.crowded

    @property
    def pending_count(self) -> int:
        """Fraud transactions scheduled but not yet emitted."""
        return len(self.pending)


__all__ = [
    "BLOCKLIST",
    "CODE",
    "Chunk",
    "Engine",
    "GeneratorConfig",
    "EQUAL_MIX",
    "MAX_DEVICES",
    "parse_mix",
]


def head(chunk: Chunk, count: int) -> Chunk:
    """The first `count` transactions of a chunk."""
    return Chunk(
        ts=chunk.ts[:count],
        account=chunk.account[:count],
        cents=chunk.cents[:count],
        channel=chunk.channel[:count],
        merchant=chunk.merchant[:count],
        scenario=chunk.scenario[:count],
        device=chunk.device[:count],
        custom={row: place for row, place in chunk.custom.items() if row < count},
    )
