"""Cost of the rule catalog itself: bounded jobs over one preloaded topic, side by side.

    flock /tmp/streamguard-bench.lock .venv/bin/python benchmarks/bench_rules_bounded.py \
        [--preload 2000000] [--rounds 2] [--dir OTHER_RULES ...]

N transactions are preloaded once into a private Kafka. Then each variant runs the whole catalog
as a bounded Flink job (earliest to latest offset) into a blackhole sink, in its own process,
the variants alternating round by round; the figure is N over the job's wall time, JVM start
included, no checkpoints. Variants: the packaged catalog reading only the columns it mentions
(what the rules job does), the same catalog declaring all 17 columns, and each --dir catalog
(e.g. an older version: `git archive REV src/streamguard/rules/sql | tar -x -C /tmp/old`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import preload  # noqa: E402
from tests.stackfixture import running_stack  # noqa: E402

HEAP_MB = "3072"


def job(columns: str, folder: str) -> None:
    """Run the catalog once, bounded, into a blackhole (in this process); print its seconds."""
    from streamguard.config import get_settings
    from streamguard.rules import engine
    from streamguard.rules.catalog import load_rules

    settings = get_settings()
    rules = load_rules(Path(folder) if folder else None)
    source = engine.Source.kafka(settings, f"bounded-{time.time_ns()}", startup="earliest-offset")
    source.connector_options["scan.bounded.mode"] = "latest-offset"
    env = engine.create_environment(settings, jars=[engine.connector_jar(settings)])
    read = engine.columns_read(rules, {}) if columns == "read" else None
    engine.register_tables(env, settings, source, {"connector": "blackhole"}, columns=read)
    began = time.monotonic()
    engine.statement_set(env, rules, {}).execute().wait()
    print(json.dumps({"seconds": time.monotonic() - began}))


def run_job(env: dict[str, str], columns: str, folder: str) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--job", columns, "--job-dir", folder],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bounded job failed:\n{result.stderr[-3000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", action="append", default=[], help="another catalog to compare")
    parser.add_argument("--job", default="", help=argparse.SUPPRESS)
    parser.add_argument("--job-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        job(args.job, args.job_dir)
        return
    variants = [("packaged catalog, columns it reads", "read", "")]
    variants.append(("packaged catalog, all 17 columns", "all", ""))
    variants += [(f"catalog in {folder}", "all", folder) for folder in args.dir]
    with running_stack(only="kafka", STREAMGUARD_KAFKA_HEAP_MB="1024") as stack:
        start_ms = int(time.time() * 1000) - args.preload // 2 - 600_000
        took = preload(stack, args.preload, args.accounts, "R", start_ms)
        print(f"preloaded {args.preload:,} transactions in {took:.1f} s")
        env = {
            **stack.env,
            "STREAMGUARD_FLINK_HEAP_MB": HEAP_MB,
            "JVM_ARGS": f"-Xmx{HEAP_MB}m -XX:+UseParallelGC",
        }
        seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds):
            for name, columns, folder in variants:
                seconds[name].append(run_job(env, columns, folder))
    print(f"bounded jobs into a blackhole, JVM start included, {args.rounds} round(s):")
    rates = {}
    for name, runs in seconds.items():
        rates[name] = args.preload / statistics.median(runs)
        each = ", ".join(f"{args.preload / s:,.0f}" for s in runs)
        print(f"  {name:40s} {rates[name]:>9,.0f} tx/s median ({each})")
    first = variants[0][0]
    for name in rates:
        if name != first:
            print(f"  {first} / {name}: {rates[first] / rates[name]:.2f}x")


if __name__ == "__main__":
    main()
