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

`--keep DIR` keeps the stack's data in DIR (stopped, not wiped): a later run with the same DIR
starts it again on the same ports and stores nothing, so an experiment costs only its rounds.
`--variant NAME=SRC` (repeatable) runs the backtest from another source tree (a `src` folder,
e.g. `git archive HEAD~1 src | tar -x -C /tmp/before`), alternated round by round with the
others like the parallelism levels, for side-by-side ratios; every run's alerts, actions and
changes must be identical, or the bench exits 1. Each run's stages (engine: the JVM and the
tables; plan: planning and submitting the job; job: its run while the alerts are collected;
collect: making alerts of the rows; decide; compare) are printed where the backtest reports
them.

On the 2 shared cores, 1,000,000 transactions, median of 3 (`--rounds 3 --parallelism 1,2`):
37.0 s wall at parallelism 1 (replay 31.2 s = 32,010 tx/s), 44.6 s at 2. Before each distinct
rule ran once it took 137.1 s, and 97.0 s before the alerts reached Python in bulk (git log has
each step's side-by-side run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamguard.bench.private_stack import (  # noqa: E402
    PrivateStack,
    private_env,
    private_stack,
    settings_from,
)

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
    env: dict[str, str], db_url: str, out: Path, parallelism: int, src: str
) -> tuple[float, dict]:
    """One `streamguard backtest` over every stored transaction; (wall seconds, result)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT min(event_time), max(event_time) FROM transactions").fetchone()
    assert row is not None and row[0] is not None
    start, end = row[0], row[1] + timedelta(milliseconds=1)
    extra = {"STREAMGUARD_FLINK_PARALLELISM": str(parallelism)}
    if src:
        extra["PYTHONPATH"] = src
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
        env={**env, **extra},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - began, json.loads(out.read_text())


@contextmanager
def kept_stack(folder: Path) -> Iterator[tuple[PrivateStack, bool]]:
    """The stack whose data lives in `folder`: (stack, whether its history is still to store).

    Its environment (ports included) is saved beside the data, so a later run starts the same
    Kafka and PostgreSQL again; it is stopped, never wiped, at the end.
    """
    saved = folder / "bench-env.json"
    if saved.exists():
        env = json.loads(saved.read_text())
    else:
        folder.mkdir(parents=True, exist_ok=False)
        folder.chmod(0o755)  # the PostgreSQL cluster's owner must reach its data folder
        env = private_env(folder, inherit=False)
        saved.write_text(json.dumps(env))
    stack = PrivateStack(env, settings_from(env))
    stack.cli("up", "--only", "postgres,kafka", timeout=600)
    try:
        yield stack, not (folder / "bench-stored").exists()
    finally:
        stack.cli("down", "--keep", "--yes", timeout=180)


def fingerprint(result: dict) -> str:
    """What must not change between variants: each catalog's alerts and actions, the changes."""
    catalogs = {
        name: {key: c[key] for key in ("alerts_per_rule", "actions", "cases")}
        for name, c in result["catalogs"].items()
    }
    return json.dumps(
        [result["transactions"], catalogs, result["changes"]], sort_keys=True, default=str
    )


def stages(result: dict) -> str:
    """The run's stage times, as far as this variant's backtest reports them."""
    seconds = result["seconds"]
    named = [(k, v) for k, v in seconds.items() if k not in ("replay", "total")]
    if not named:
        return f"decide+compare {seconds['total'] - seconds['replay']:.1f} s"
    return ", ".join(f"{k} {v:.1f} s" for k, v in named)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--parallelism",
        default="1",
        help="the replay job's parallelism; several (e.g. 1,2) alternate round by round",
    )
    parser.add_argument(
        "--keep", type=Path, help="a folder that keeps the stored history for later runs"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="a source tree to run the backtest from (repeatable; default: this checkout)",
    )
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant) or {"this": ""}
    stack = kept_stack(args.keep.resolve()) if args.keep is not None else _fresh_stack()
    with stack as (handle, to_store):
        folder = handle.settings.state_path
        if to_store:
            stored_s = store_history(
                handle.env, handle.settings.db_url, args.tx, folder / "decide.log"
            )
            (folder / "bench-stored").write_text(str(args.tx))
            print(
                f"stored {args.tx:,} transactions in {stored_s:.1f} s "
                "(generator + decision service)"
            )
        else:
            print(
                f"reusing the {(folder / 'bench-stored').read_text()} transactions kept in {folder}"
            )
        levels = [(name, int(p)) for name in variants for p in args.parallelism.split(",")]
        walls: dict[tuple[str, int], list[float]] = {level: [] for level in levels}
        replays: dict[tuple[str, int], list[float]] = {level: [] for level in levels}
        prints: dict[str, tuple[str, int]] = {}
        tx = 0
        for round_ in range(1, args.rounds * len(levels) + 1):
            # alternate the levels, each starting a round in turn, so drift hits them alike
            level = levels[(round_ - 1 + (round_ - 1) // len(levels)) % len(levels)]
            name, parallelism = level
            wall, result = run_backtest(
                handle.env, handle.settings.db_url, folder / "bt.json", parallelism, variants[name]
            )
            live, cand = result["catalogs"]["live"], result["catalogs"]["candidate"]
            replay = result["seconds"]["replay"]
            tx = result["transactions"]
            walls[level].append(wall)
            replays[level].append(replay)
            prints.setdefault(fingerprint(result), level)
            print(
                f"round {round_}, {name}, parallelism {parallelism}: {tx:,} tx, "
                f"wall {wall:.1f} s (replay {replay:.1f} s = {tx / replay:,.0f} tx/s; "
                f"{stages(result)}); "
                f"alerts live {sum(live['alerts_per_rule'].values()):,} / candidate "
                f"{sum(cand['alerts_per_rule'].values()):,}; changed verdicts "
                f"{len(result['changes']):,}",
                flush=True,
            )
        medians = {}
        for level in levels:
            wall_s, replay_s = statistics.median(walls[level]), statistics.median(replays[level])
            medians[level] = wall_s
            print(
                f"{level[0]}, parallelism {level[1]}, median of {args.rounds}: "
                f"wall {wall_s:.1f} s, "
                f"replay {replay_s:.1f} s = {tx / replay_s:,.0f} tx/s "
                f"({tx / wall_s:,.0f} tx/s end to end)"
            )
        if len(levels) > 1:
            first = levels[0]
            for level in levels[1:]:
                print(
                    f"wall ratio {level[0]} p{level[1]} / {first[0]} p{first[1]}: "
                    f"{medians[level] / medians[first]:.3f}"
                )
        if len(prints) > 1:
            print(
                f"MISMATCH: the runs' alerts, actions or changes differ: {sorted(prints.values())}"
            )
            sys.exit(1)
        print("the same alerts, actions and changes in every run")


@contextmanager
def _fresh_stack() -> Iterator[tuple[PrivateStack, bool]]:
    with private_stack("postgres,kafka", inherit=False, prefix="streamguard-bench-bt-") as handle:
        yield handle, True


if __name__ == "__main__":
    main()
