"""The four modes: batch (simulated time, flat out), stream (steady rate), realistic (daily
cycle) and attack (one scenario on demand). Each feeds an Engine's chunks to a Sink."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import numpy as np

from streamguard.generate import clock
from streamguard.generate.delivery import Sink
from streamguard.generate.engine import Chunk, Engine, head
from streamguard.generate.scenarios import NIGHT_SPENDING
from streamguard.generate.wallclock import SYSTEM_CLOCK, WallClock
from streamguard.generate.wire import render

DEFAULT_CHUNK = 8192
#: Batch mode's simulated pace: each account's mean number of transactions per day.
DEFAULT_TX_PER_ACCOUNT_DAY = 10.0
#: Stream and realistic modes wake once a tick and send all that fell due since, in one go: a
#: send and a sleep per transaction cost about 40% of a core at 5,000 tx/s (issue 14).
DEFAULT_TICK_S = 0.01
Say = Callable[[str], None]


class Stopper:
    """SIGINT/SIGTERM ask the run to stop cleanly (flush, counts); a second Ctrl+C kills."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread signals cannot be caught: the caller stops us another way.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


@dataclass
class RunStats:
    """How many transactions a run generated, and over how long."""

    transactions: int = 0
    elapsed_s: float = 0.0
    dropped: int = 0  # transactions of attacks in flight at the stop, never sent

    @property
    def rate(self) -> float:
        """Transactions per second of wall time."""
        return self.transactions / self.elapsed_s if self.elapsed_s else 0.0


def _emit(engine: Engine, sink: Sink, chunk: Chunk) -> int:
    sink.send(render(chunk, engine))
    return len(chunk)


# -- batch ---------------------------------------------------------------------------------


class SimulatedClock:
    """Poisson arrivals in simulated time, thinned by the daily cycle (mean `rate_per_s`)."""

    def __init__(self, start_ms: int, rate_per_s: float, rng: np.random.Generator):
        self.t = float(start_ms)
        self.peak_per_ms = rate_per_s * clock.PEAK_ACTIVITY / 1000
        self.rng = rng

    def next(self, n: int) -> np.ndarray:
        """The next `n` arrival times, epoch ms, sorted."""
        parts, need = [], n
        while need > 0:
            proposals = int(need * clock.PEAK_ACTIVITY * 1.2) + 16
            t = self.t + np.cumsum(self.rng.exponential(1 / self.peak_per_ms, proposals))
            hours = clock.local_hours(t.astype(np.int64))
            keep = self.rng.random(proposals) * clock.PEAK_ACTIVITY < clock.HOURLY_ACTIVITY[hours]
            accepted = t[keep][:need]
            self.t = float(accepted[-1]) if len(accepted) == need else float(t[-1])
            parts.append(accepted)
            need -= len(accepted)
        return np.floor(np.concatenate(parts)).astype(np.int64)


def batch_rate(accounts: int, tx_per_account_day: float) -> float:
    """Batch mode's simulated mean rate, in transactions per simulated second."""
    return accounts * tx_per_account_day / 86_400


def run_batch(
    engine: Engine,
    sink: Sink,
    *,
    count: int,
    start_ms: int | None = None,
    tx_per_account_day: float = DEFAULT_TX_PER_ACCOUNT_DAY,
    chunk: int = DEFAULT_CHUNK,
    on_chunk: Callable[[int], None] | None = None,
    stopper: Stopper | None = None,
) -> RunStats:
    """`count` transactions as fast as possible, over simulated time ending about now."""
    rate = batch_rate(engine.population.size, tx_per_account_day)
    if start_ms is None:
        start_ms = int(time.time() * 1000 - count / rate * 1000)
    sim = SimulatedClock(start_ms, rate * (1 - engine.config.fraud_rate), engine.rng)
    stats, began = RunStats(), time.perf_counter()
    while stats.transactions < count and not (stopper and stopper.requested):
        remaining = count - stats.transactions
        last = remaining <= 2 * chunk
        size = remaining if last else chunk
        part = engine.take(sim.next(size), replace=False, drain=last)
        if len(part) > remaining:
            part = head(part, remaining)
        stats.transactions += _emit(engine, sink, part)
        if on_chunk:
            on_chunk(stats.transactions)
    stats.elapsed_s = time.perf_counter() - began
    return stats


# -- stream and realistic ------------------------------------------------------------------


class Pace:
    """What a paced run owes: the transactions fallen due and not yet sent, and when each fell
    due, so that one send a tick still stamps every transaction with its own time."""

    def __init__(self, at: float, last_ms: int) -> None:
        self.owed = 0.0
        self.at = at  # the monotonic instant `owed` was last brought up to
        self.last_ms = last_ms  # the latest stamp handed out: stamps never go back

    def accrue(self, now: float, rate: float) -> None:
        """Owe what `rate` tx/s adds up to `now`, never more than 1 s of it (behind, the run
        sends flat out rather than piling up a backlog)."""
        self.owed = min(self.owed + rate * (now - self.at), max(rate, 1.0))
        self.at = now

    def take(self, now_ms: int, rate: float, limit: int) -> np.ndarray:
        """The due instants (epoch ms, sorted, none after `now_ms`) of the oldest `limit` owed
        transactions, each the moment it fell due at `rate`; they are no longer owed."""
        due = min(int(self.owed + 1e-9), limit)  # 1e-9: 100 ticks of 50.0 make 5,000, not 4,999
        behind = self.owed - np.arange(1, due + 1)
        ms = np.floor(now_ms - behind * 1000 / max(rate, 1e-9)).astype(np.int64)
        stamps = np.maximum(np.minimum(ms, now_ms), self.last_ms)
        self.owed -= due
        if due:
            self.last_ms = int(stamps[-1])
        return stamps


def next_tick_in(began: float, now: float, tick_s: float) -> float:
    """Seconds from `now` to the next tick of a clock that ticks every `tick_s` from `began`."""
    ticks = np.floor((now - began) / tick_s + 1e-6) + 1
    return max(0.0, began + float(ticks) * tick_s - now)


def run_paced(
    engine: Engine,
    sink: Sink,
    *,
    rate: float,
    follow_cycle: bool = False,
    duration_s: float | None = None,
    stopper: Stopper | None = None,
    chunk: int = DEFAULT_CHUNK,
    say: Say | None = None,
    report_every_s: float = 10.0,
    poll: Callable[[], None] | None = None,
    wall: WallClock = SYSTEM_CLOCK,
    tick_s: float = DEFAULT_TICK_S,
) -> RunStats:
    """Real-time traffic stamped now: `rate` tx/s held steady, or (follow_cycle) `rate` as the
    daily mean, scaled hour by hour by the São Paulo daily cycle. Runs until stopped or for
    `duration_s`. Once a tick (`tick_s`) it sends every transaction fallen due, in one go, each
    stamped with the moment it fell due, then sleeps to the next tick. If the machine cannot
    keep up it sends flat out and says so. `wall` is the clock that paces and stamps (tests
    pass a simulated one). No event is ever stamped ahead of it: at the stop, the attacks still
    in flight are dropped (`RunStats.dropped`)."""
    began = wall.monotonic()
    end = began + duration_s if duration_s is not None else float("inf")
    pace, sent = Pace(began, wall.now_ms()), 0
    stats = RunStats()
    window_start, window_sent = began, 0
    while not (stopper and stopper.requested):
        real = wall.monotonic()
        now = min(real, end)  # the last tick of a timed run ends it exactly: the total is exact
        now_ms = wall.now_ms() - int((real - now) * 1000)
        current = rate * (clock.activity(now_ms) if follow_cycle else 1.0)
        pace.accrue(now, current)
        slots = pace.take(now_ms, current, chunk)
        if len(slots):
            sent += _emit(engine, sink, engine.take(slots, replace=True))
        elif poll:
            poll()
        if say and now - window_start >= report_every_s:
            say(_progress_line(engine, sent, window_sent, now - window_start))
            window_start, window_sent = now, sent
        if now >= end:
            break
        if pace.owed < 1:  # everything due is sent (else behind: go on at once)
            wall.sleep(next_tick_in(began, wall.monotonic(), tick_s))
    # The attacks in flight are due later: sent now they would be ahead of the clock, so they
    # are dropped, and say so (never sent, they have no label either).
    stats.dropped = engine.drop_pending()
    if stats.dropped and say:
        say(
            f"stopping: dropped the {stats.dropped:,} transactions of attacks in flight, due "
            "later (not sent, not labelled: no event is sent ahead of the clock)"
        )
    stats.transactions, stats.elapsed_s = sent, wall.monotonic() - began
    return stats


def _progress_line(engine: Engine, sent: int, before: int, seconds: float) -> str:
    fraud = int(engine.tx_by_scenario[1:].sum())
    return (
        f"sent {sent:,} transactions ({(sent - before) / seconds:,.1f} tx/s over the last "
        f"{seconds:.0f} s), {fraud:,} fraudulent"
    )


# -- attack --------------------------------------------------------------------------------


def run_attack(
    engine: Engine,
    sink: Sink,
    *,
    scenario: str,
    account: str | None = None,
    episodes: int = 1,
    at_ms: int | None = None,
    wait: bool = True,
    stopper: Stopper | None = None,
    say: Say = print,
) -> RunStats:
    """`episodes` attacks of one scenario, on `account` or on free accounts, starting now (or
    `at_ms`). With `wait`, each transaction is sent when its time comes."""
    pop = engine.population
    index = None
    if account is not None:
        index = pop.account_index(account)
        if index is None:
            raise ValueError(
                f"unknown account {account!r}: the population has ACC000000-"
                f"{pop.account_id(pop.size - 1)} (see --accounts) and the blocklist's mules"
            )
    start = at_ms if at_ms is not None else int(time.time() * 1000)
    if scenario == NIGHT_SPENDING and not clock.is_night(start):
        start = clock.last_night_moment(start)
        say("night_spending needs night in São Paulo: backdating it to the last 23:30 local")
    events = []
    for number in range(episodes):
        episode = engine.start_episode(scenario, start + number * 1000, index, queue=False)
        if episode is None:
            raise RuntimeError("no free account for the attack; try --account")
        events.extend(episode.events)
    events.sort(key=lambda event: event.ts_ms)
    ahead_ms = events[-1].ts_ms - int(time.time() * 1000) if events else 0
    if not wait and at_ms is None and ahead_ms > 0:
        # Sent at once, the attack's later steps would be stamped ahead of the clock, which
        # the pipeline refuses: shift it back so that its last transaction happens now.
        for event in events:
            event.ts_ms -= ahead_ms
        say(f"--no-wait: the attack is stamped to end now (moved {ahead_ms / 1000:.0f} s back)")
    stats, began = RunStats(), time.perf_counter()
    offset_ms = (
        int(time.time() * 1000) - start if wait and start > time.time() * 1000 - 1000 else None
    )
    for event in events:
        if stopper and stopper.requested:
            break
        if offset_ms is not None:
            _sleep_until(event.ts_ms + offset_ms, stopper, sink)
        part = engine.events_chunk([event])
        stats.transactions += _emit(engine, sink, part)
        say(describe_row(engine, part, 0))
    stats.elapsed_s = time.perf_counter() - began
    return stats


def _sleep_until(wall_ms: int, stopper: Stopper | None, sink: Sink) -> None:
    while not (stopper and stopper.requested):
        left = wall_ms / 1000 - time.time()
        if left <= 0:
            return
        poll = getattr(sink, "poll", None)
        if poll:
            poll()
        time.sleep(min(left, 0.2))


def brl(cents: int) -> str:
    """An amount the Brazilian way: R$ 1.234,56."""
    reais = f"{cents // 100:,}".replace(",", ".")
    return f"R$ {reais},{cents % 100:02d}"


def describe_row(engine: Engine, chunk: Chunk, row: int) -> str:
    """One transaction in words, for attack mode's running commentary."""
    from datetime import datetime

    from streamguard.generate.geo import CITIES
    from streamguard.generate.merchants import CHANNELS
    from streamguard.generate.scenarios import SCENARIOS

    pop = engine.population
    account = int(chunk.account[row])
    place = chunk.custom.get(row) or pop.place(account, int(chunk.device[row]))
    city = CITIES[place.city]
    when = datetime.fromtimestamp(int(chunk.ts[row]) / 1000, tz=clock.LOCAL_TZ)
    return (
        f"{when:%Y-%m-%d %H:%M:%S} {SCENARIOS[int(chunk.scenario[row])]:<17} "
        f"{pop.account_id(account)} {brl(int(chunk.cents[row])):>14} "
        f"{CHANNELS[int(chunk.channel[row])].value:<6} "
        f"{pop.merchants[int(chunk.merchant[row])].name} — {city.name}-{city.state} "
        f"({place.device_id})"
    )
