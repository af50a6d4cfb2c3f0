"""Seeds, the paced modes' rates, attack mode, the menu and the command line (no Kafka)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pytest

from streamguard.domain.models import Transaction
from streamguard.generate import clock
from streamguard.generate.blocklist import BLOCKED_ACCOUNTS, BLOCKED_MERCHANTS, blocked_ids
from streamguard.generate.delivery import MemorySink
from streamguard.generate.engine import Engine, GeneratorConfig, parse_mix
from streamguard.generate.modes import (
    DEFAULT_TICK_S,
    Stopper,
    run_attack,
    run_batch,
    run_paced,
)
from streamguard.generate.wire import Rendered

START_MS = 1_750_000_000_000


def batch(seed: int | None, count: int = 20_000, start_ms: int = START_MS) -> MemorySink:
    sink = MemorySink()
    run_batch(
        Engine(GeneratorConfig(fraud_rate=0.05), seed=seed), sink, count=count, start_ms=start_ms
    )
    return sink


def test_the_same_seed_gives_the_same_transactions() -> None:
    first, second = batch(42), batch(42)
    assert first.values == second.values
    assert first.labels == second.labels
    assert first.keys == second.keys


def test_another_seed_or_none_gives_other_transactions() -> None:
    base = batch(42, 2000)
    assert batch(43, 2000).values != base.values
    unseeded = [batch(None, 10).values[0] for _ in range(2)]
    assert unseeded[0] != unseeded[1]


def test_modes_of_one_seed_do_not_share_transaction_ids() -> None:
    config = GeneratorConfig()
    assert (
        Engine(config, seed=1, mode="batch").id_prefix
        != Engine(config, seed=1, mode="stream").id_prefix
    )


class SimulatedClock:
    """A wall clock that moves only when the run sleeps, and by 50 ms more on the readings that
    `busy` picks: a loaded machine, without the real machine's load in the result."""

    def __init__(self, start_ms: int, busy: Callable[[int], bool] = lambda _: False) -> None:
        self.elapsed_s, self.start_ms, self.busy, self.readings = 0.0, start_ms, busy, 0

    def monotonic(self) -> float:
        self.readings += 1
        if self.busy(self.readings):
            self.elapsed_s += 0.05
        return self.elapsed_s

    def now_ms(self) -> int:
        return self.start_ms + int(self.elapsed_s * 1000)

    def sleep(self, seconds: float) -> None:
        self.elapsed_s += max(seconds, 0.0005)  # no real sleep is shorter


def local_ms(hour: int) -> int:
    """2025-06-02 at `hour`:00 in São Paulo, epoch ms."""
    return int(datetime(2025, 6, 2, hour, 0, tzinfo=clock.LOCAL_TZ).timestamp()) * 1000


def paced(rate: float, duration_s: float, wall: SimulatedClock, **kwargs) -> tuple[int, list]:
    sink = MemorySink()
    engine = Engine(GeneratorConfig(), seed=3, mode=kwargs.pop("mode", "stream"))
    stats = run_paced(engine, sink, rate=rate, duration_s=duration_s, wall=wall, **kwargs)
    sent = stats.transactions
    assert len(sink.values) == sent
    return sent, [json.loads(v)["ts_ms"] for v in sink.values]


@pytest.mark.parametrize("load", ["idle", "loaded"])
def test_stream_holds_its_rate_within_five_percent(load: str) -> None:
    # loaded: one reading in seven finds 50 ms gone, as on a busy machine
    busy = (lambda n: n % 7 == 0) if load == "loaded" else (lambda _: False)
    wall = SimulatedClock(local_ms(12), busy)
    sent, stamps = paced(400, 4.0, wall)
    assert sent == pytest.approx(1600, rel=0.05)
    ts = np.array(stamps)
    per_second = np.bincount((ts - wall.start_ms) // 1000)[:4]
    assert len(per_second) == 4
    assert np.all(np.abs(per_second - 400) <= 20), per_second
    assert wall.now_ms() - 100 <= ts[-1] <= wall.now_ms()  # stamped by the clock, now


class CountingSink(MemorySink):
    """A MemorySink that remembers the size of each send."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[int] = []

    def send(self, rendered: Rendered) -> None:
        self.sends.append(len(rendered))
        super().send(rendered)


class CountingClock(SimulatedClock):
    """A SimulatedClock that counts the run's sleeps."""

    sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        super().sleep(seconds)


@pytest.mark.parametrize("load", ["idle", "loaded"])
def test_stream_sends_once_a_tick_not_once_an_event(load: str) -> None:
    # loaded: one clock reading in seven finds 50 ms gone, so some ticks owe five times more
    busy = (lambda n: n % 7 == 0) if load == "loaded" else (lambda _: False)
    sink, wall = CountingSink(), CountingClock(local_ms(12), busy)
    engine = Engine(GeneratorConfig(), seed=3, mode="stream")
    stats = run_paced(engine, sink, rate=5000, duration_s=2.0, wall=wall)
    ticks = int(2.0 / DEFAULT_TICK_S) + 1
    assert len(sink.sends) <= ticks and wall.sleeps <= ticks  # not thousands of each
    assert stats.transactions == sum(sink.sends) == 10_000  # the total is exact
    assert max(sink.sends) <= 5000 * (DEFAULT_TICK_S + 0.05) + 1
    # each transaction carries the moment it fell due, not its tick's: 0.2 ms apart
    stamps = np.array([json.loads(v)["ts_ms"] for v in sink.values])
    ideal = wall.start_ms + np.arange(1, len(stamps) + 1) * 1000 / 5000
    assert np.all(np.diff(stamps) >= 0)
    assert np.abs(stamps - ideal).max() <= 1
    assert stamps.max() <= wall.now_ms()


def test_a_stop_drops_the_attacks_in_flight_and_sends_nothing_ahead_of_the_clock() -> None:
    sink, said = MemorySink(), []
    wall = SimulatedClock(local_ms(12))
    engine = Engine(GeneratorConfig(fraud_rate=0.3, mix={"card_testing": 1}), seed=3, mode="stream")
    stats = run_paced(engine, sink, rate=200, duration_s=2.0, wall=wall, say=said.append)
    assert stats.dropped > 0 and engine.pending_count == 0
    assert f"dropped the {stats.dropped:,} transactions of attacks in flight" in said[-1]
    assert len(sink.values) == len(sink.labels) == stats.transactions  # none sent, none labelled
    stamps = [Transaction.model_validate_json(value).ts_ms for value in sink.values]
    assert max(stamps) <= wall.now_ms()
    frauds = [json.loads(label) for label in sink.labels if json.loads(label)["is_fraud"]]
    assert frauds and len(frauds) == int(engine.tx_by_scenario[1:].sum())


def test_realistic_follows_the_daily_cycle() -> None:
    hours = [clock.activity(START_MS + h * clock.HOUR_MS) for h in range(24)]
    assert np.mean(hours) == pytest.approx(1.0, rel=0.05)
    assert max(hours) / min(hours) > 10
    noon = local_ms(12)
    assert clock.activity(noon) > 1.4 > 0.2 > clock.activity(noon - 8 * clock.HOUR_MS)


@pytest.mark.parametrize("hour", [4, 12, 19])
def test_realistic_sends_the_hours_share_of_the_daily_mean(hour: int) -> None:
    wall = SimulatedClock(local_ms(hour))
    sent, stamps = paced(300, 20.0, wall, mode="realistic", follow_cycle=True)
    expected = 300 * clock.activity(local_ms(hour)) * 20.0
    assert sent == pytest.approx(expected, rel=0.05, abs=5)
    assert all(local_ms(hour) <= ts <= wall.now_ms() for ts in stamps)


def test_stopper_stops_a_paced_run() -> None:
    stopper = Stopper()
    stopper.requested = True
    stats = run_paced(
        Engine(GeneratorConfig(), seed=1, mode="stream"), MemorySink(), rate=100, stopper=stopper
    )
    assert stats.transactions == 0


def attack(scenario: str, account: str | None = "ACC000123", **kwargs) -> list[Transaction]:
    sink = MemorySink()
    engine = Engine(GeneratorConfig(), seed=2, mode="attack")
    run_attack(
        engine, sink, scenario=scenario, account=account, wait=False, say=lambda _: None, **kwargs
    )
    labels = [json.loads(label) for label in sink.labels]
    assert {label["scenario"] for label in labels} <= {scenario, "legit"}
    return [Transaction.model_validate_json(value) for value in sink.values]


def test_attack_velocity_burst_on_one_account() -> None:
    txs = attack("velocity_burst")
    assert {tx.account_id for tx in txs} == {"ACC000123"}
    assert len(txs) >= 5
    assert txs[3].ts_ms - txs[0].ts_ms <= 60_000
    now = time.time() * 1000
    assert now - 5000 < txs[-1].ts_ms <= now  # sent at once: it ends now, never ahead


def test_attack_sent_at_once_is_never_stamped_ahead_of_the_clock() -> None:
    txs = attack("card_testing")
    now = time.time() * 1000
    assert txs[-1].ts_ms - txs[0].ts_ms > 10_000  # the attack's own pace, kept
    assert all(tx.ts_ms <= now for tx in txs)


def test_attack_night_spending_by_day_is_backdated_to_the_night() -> None:
    at = (
        int(__import__("datetime").datetime(2025, 6, 2, 14, 0, tzinfo=clock.LOCAL_TZ).timestamp())
        * 1000
    )
    txs = attack("night_spending", at_ms=at)
    assert all(clock.is_night(tx.ts_ms) and tx.amount > 1000 for tx in txs)


def test_attack_blocklist_on_a_mule_and_on_a_customer() -> None:
    mule = attack("blocklist", BLOCKED_ACCOUNTS[0])
    assert {tx.account_id for tx in mule} == {BLOCKED_ACCOUNTS[0]}
    customer = attack("blocklist", "ACC000007")
    assert {tx.merchant_id for tx in customer} <= set(BLOCKED_MERCHANTS)


def test_attack_on_an_unknown_account_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown account"):
        attack("high_amount", "ACC999999")


def test_several_episodes_and_any_account() -> None:
    txs = attack("high_amount", None, episodes=3)
    assert len(txs) == 3 and all(tx.amount > 3000 for tx in txs)


def test_blocklist_ids_are_fixed_and_disjoint_from_the_population() -> None:
    ids = blocked_ids(seed=1)
    assert ids == blocked_ids(seed=2)
    assert ids["ACCOUNT"] == BLOCKED_ACCOUNTS and ids["MERCHANT"] == BLOCKED_MERCHANTS
    pop = Engine(GeneratorConfig(accounts=100), seed=1).population
    assert not set(BLOCKED_ACCOUNTS) & {pop.account_id(i) for i in range(pop.size)}
    assert pop.account_index(BLOCKED_ACCOUNTS[1]) == pop.size + 1
    assert pop.account_index("ACC000099") == 99 and pop.account_index("ACC000100") is None
    assert not set(BLOCKED_MERCHANTS) & {m.merchant_id for m in pop.merchants[:-8]}


def test_mix_parsing() -> None:
    assert parse_mix("velocity_burst=3,card_testing")["velocity_burst"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_mix("phishing=1")
    with pytest.raises(ValueError):
        GeneratorConfig(fraud_rate=1.5)


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamguard.cli.main", "generate", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_no_sub_command_without_a_terminal_prints_help_instead_of_a_menu() -> None:
    result = cli(timeout=60)
    assert result.returncode == 0
    for command in ("batch", "stream", "attack", "realistic"):
        assert command in result.stdout


def test_cli_batch_to_stdout_is_reproducible() -> None:
    args = (
        "batch",
        "-n",
        "300",
        "--seed",
        "7",
        "--start",
        "2025-06-01T10:00",
        "--output",
        "stdout",
        "--accounts",
        "1000",
    )
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 300 and first.stdout == second.stdout
    assert Transaction.model_validate_json(lines[0]).event_time.year == 2025
    assert "generated 300 transactions" in first.stderr


def test_cli_blocklist_lists_every_id() -> None:
    result = cli("blocklist")
    lines = result.stdout.splitlines()
    assert (
        f"ACCOUNT {BLOCKED_ACCOUNTS[0]}" in lines and f"MERCHANT {BLOCKED_MERCHANTS[-1]}" in lines
    )
    assert len(lines) == len(BLOCKED_ACCOUNTS) + len(BLOCKED_MERCHANTS)


def test_cli_rejects_a_bad_mix() -> None:
    result = cli("batch", "-n", "10", "--output", "none", "--mix", "phishing=1")
    assert result.returncode != 0 and "phishing" in result.stdout + result.stderr


def test_menu_runs_the_chosen_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console
    from rich.prompt import IntPrompt, Prompt

    from streamguard.generate import menu

    answers = iter(["1", "5"])
    monkeypatch.setattr(Prompt, "ask", classmethod(lambda cls, *a, **k: next(answers)))
    monkeypatch.setattr(IntPrompt, "ask", classmethod(lambda cls, *a, **k: 1234))
    calls = []
    code = menu.run_menu(
        Console(file=open("/dev/null", "w")),  # noqa: SIM115
        runner=lambda options, **kw: calls.append((options, kw)) or 0,
    )
    assert code == 0
    assert calls[0][1] == {"count": 1234} and calls[0][0].seed == 5


def test_32_accounts_per_tx_s_keep_legit_accounts_21_s_apart() -> None:
    # Two thirds of the accounts are busy at any time at this rate; none may be crowded.
    engine = Engine(GeneratorConfig(accounts=16_000), seed=4, mode="stream")
    t, seen = START_MS, {}
    for _ in range(40 * 50):  # 40 s of 20 ms ticks at 500 tx/s
        slots = t + np.arange(1, 11) * 2
        t = int(slots[-1])
        chunk = engine.take(slots, replace=True)
        for account, ts, scenario in zip(
            chunk.account.tolist(), chunk.ts.tolist(), chunk.scenario.tolist(), strict=True
        ):
            if scenario == 0:
                assert ts - seen.get(account, -(10**15)) >= 21_000
                seen[account] = ts
    assert engine.crowded == 0


def test_attack_commentary_writes_amounts_the_brazilian_way() -> None:
    from streamguard.generate.modes import brl

    assert (brl(123456789), brl(5)) == ("R$ 1.234.567,89", "R$ 0,05")
