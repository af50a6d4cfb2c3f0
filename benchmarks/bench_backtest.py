"""Backtest benchmark (a script, not a test). Prints figures; run it alone:

    flock /tmp/streamguard-bench.lock flock /tmp/streamguard-itest.lock \
        .venv/bin/python benchmarks/bench_backtest.py [--tx 1000000] [--rounds 3]

A private PostgreSQL + Kafka (the project's own `streamguard up`, default sizing), `--tx`
transactions of the generator's batch mode (with its labels) stored by the real decision service,
then
`streamguard backtest` over all of them, live catalog against HIGH_AMOUNT at R$ 5,000, both in
one run, `--rounds` times. Prints the wall time of each run (JVM start included), its replay
time and rate, and the medians. `--parallelism 1,2` alternates the replay job's parallelism
round by round (1, 2, 2, 1, 1, 2, ...) and gives the medians of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamguard.bench.private_stack import private_stack  # noqa: E402

CLI = [sys.executable, "-m", "streamguard.cli.main"]


def store_history(env: dict[str, str], db_url: str, count: int, log: Path) -> float:
    """Generate `count` transactions into Kafka and wait until the decision service stored them."""
    # A batch that starts in the past: one that ends "about now" stamps its last events past
    # the moment Kafka appends them, beyond the allowed skew, and those go to the dead letters.
    start = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat(timespec="seconds")
    subprocess.run(
        [*CLI, "generate", "batch", "-n", str(count), "--seed", "1", "--start", start, "--quiet"],
        env=env,
        check=True,
    )
    began = time.monotonic()
    with (
        log.open("ab") as out,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        service = subprocess.Popen(
            [sys.executable, "-m", "streamguard.decide"], env=env, stdout=out, stderr=out
        )
        try:
            while True:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM transactions)"
                    " + (SELECT count(*) FROM dead_letters WHERE source_topic = 'transactions')"
                ).fetchone()
                if row and row[0] >= count:
                    break
                if service.poll() is not None:
                    raise RuntimeError(f"the decision service exited; see {log}")
                time.sleep(1)
        finally:
            service.terminate()
            service.wait(30)
    return time.monotonic() - began


def run_backtest(
    env: dict[str, str], db_url: str, out: Path, parallelism: int
) -> tuple[float, dict]:
    """One `streamguard backtest` over every stored transaction; (wall seconds, result)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT min(event_time), max(event_time) FROM transactions").fetchone()
    assert row is not None and row[0] is not None
    start, end = row[0], row[1] + timedelta(milliseconds=1)
    began = time.monotonic()
    subprocess.run(
        [
            *CLI,
            "backtest",
            "--from",
            start.isoformat(),
            "--to",
            end.isoformat(),
            "--set",
            "HIGH_AMOUNT.threshold_brl=5000",
            "--out",
            str(out),
        ],
        env={**env, "STREAMGUARD_FLINK_PARALLELISM": str(parallelism)},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - began, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--parallelism",
        default="1",
        help="the replay job's parallelism; several (e.g. 1,2) alternate round by round",
    )
    args = parser.parse_args()
    with private_stack("postgres,kafka", inherit=False, prefix="streamguard-bench-bt-") as handle:
        folder = handle.settings.state_path
        stored_s = store_history(handle.env, handle.settings.db_url, args.tx, folder / "decide.log")
        print(f"stored {args.tx:,} transactions in {stored_s:.1f} s (generator + decision service)")
        levels = [int(p) for p in args.parallelism.split(",")]
        walls: dict[int, list[float]] = {p: [] for p in levels}
        replays: dict[int, list[float]] = {p: [] for p in levels}
        for round_ in range(1, args.rounds * len(levels) + 1):
            # alternate the levels, each starting a round in turn, so drift hits them alike
            level = levels[(round_ - 1 + (round_ - 1) // len(levels)) % len(levels)]
            wall, result = run_backtest(
                handle.env, handle.settings.db_url, folder / "bt.json", level
            )
            live, cand = result["catalogs"]["live"], result["catalogs"]["candidate"]
            replay = result["seconds"]["replay"]
            walls[level].append(wall)
            replays[level].append(replay)
            print(
                f"round {round_}, parallelism {level}: {result['transactions']:,} tx, "
                f"wall {wall:.1f} s "
                f"(replay {replay:.1f} s = {result['transactions'] / replay:,.0f} tx/s, "
                f"decide+compare {result['seconds']['total'] - replay:.1f} s); "
                f"alerts live {sum(live['alerts_per_rule'].values()):,} / candidate "
                f"{sum(cand['alerts_per_rule'].values()):,}; changed verdicts "
                f"{len(result['changes']):,}",
                flush=True,
            )
        tx = args.tx
        for level in levels:
            wall_s, replay_s = statistics.median(walls[level]), statistics.median(replays[level])
            print(
                f"parallelism {level}, median of {args.rounds}: wall {wall_s:.1f} s, replay "
                f"{replay_s:.1f} s = {tx / replay_s:,.0f} tx/s ({tx / wall_s:,.0f} tx/s end to end)"
            )


if __name__ == "__main__":
    main()
