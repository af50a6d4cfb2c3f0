"""Benchmark (not a test) of the generator: batch mode's throughput and memory, or (--stream)
stream mode's CPU per transaction at given rates, side by side with another tree (--against).

    .venv/bin/python benchmarks/bench_generator.py                 # 10 million transactions
    .venv/bin/python benchmarks/bench_generator.py --count 2000000 # a quicker look
    .venv/bin/python benchmarks/bench_generator.py --stream 5000,20000 --against ../main-tree \
        --rounds 3 --seconds 20                                    # stream mode, two trees

It starts its own single-node Kafka broker (tests.stackfixture.running_stack, no PostgreSQL),
takes the machine's benchmark lock (/tmp/streamguard-bench.lock, shared with
bench_pipeline.sh) so that two benchmarks never share the CPUs, then generates in this one
process exactly as `streamguard generate batch` does, with every message acknowledged by the
broker (acks=all, idempotent). It reports:
- throughput: transactions generated and acknowledged per second of wall time (each one is two
  messages: the transaction and its label), and the CPU seconds this process used;
- memory: this process's resident set size at the start, the middle and the end of the run;
- the broker's own count of messages (end offsets), so nothing rests on the generator's word;
- the load average, because other work on the machine slows everything down.
A JSON copy goes to benchmarks/results/generator-<time>.json.

With --stream, each run is `streamguard generate stream --rate R --duration-s S` in a process of
its own (benchmarks/generator_stream_run.py, this tree's code or, with --against, the other
tree's `src`), alternating trees and rates round after round on one broker, after a warm-up
run that is not counted (a fresh broker's first run is slow). Per run: the
generator's CPU per transaction while it streams (librdkafka's threads included, the population's
build not), the broker's count, and event time -> Kafka append time (the topics use
LogAppendTime) of every transaction it sent. Then the medians over the rounds, and each tree's
ratio to the other's. The JSON goes to benchmarks/results/generator-stream-<time>.json.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.stackfixture

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition  # noqa: E402
from tests.stackfixture import running_stack  # noqa: E402

from streamguard.bench.load import accounts_for  # noqa: E402
from streamguard.bench.metrics import summarize  # noqa: E402
from streamguard.generate.delivery import KafkaSink  # noqa: E402
from streamguard.generate.engine import Engine, GeneratorConfig  # noqa: E402
from streamguard.generate.modes import run_batch  # noqa: E402
from streamguard.generate.wire import LABELS_PER_MESSAGE  # noqa: E402
from streamguard.kafka import topics  # noqa: E402

LOCK = Path("/tmp/streamguard-bench.lock")
MIB = 1024 * 1024


def partition_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset in `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-generator-probe"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> int:
    """The number of messages in `topic` (sum of its partitions' end offsets)."""
    return sum(partition_ends(bootstrap, topic).values())


def broker_process(settings) -> psutil.Process | None:  # type: ignore[no-untyped-def]
    """The local broker's process, from the stack's PID file."""
    from streamguard.stack.process import Paths, read_pid

    pid = read_pid(Paths(settings.state_path).pidfile("kafka"))
    return psutil.Process(pid) if pid else None


def cpu_s(process: psutil.Process | None) -> float:
    """User + system CPU seconds of a process and its children so far."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def measure(settings, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    me = psutil.Process()
    broker = broker_process(settings)
    engine = Engine(
        GeneratorConfig(accounts=args.accounts, fraud_rate=args.fraud_rate), seed=args.seed
    )
    extra = dict(item.split("=", 1) for item in args.producer)
    sink = KafkaSink(settings, bulk=True, extra=extra)
    rss: dict[str, float] = {"start": me.memory_info().rss / MIB}
    samples: list[tuple[int, float, float]] = []  # (done, seconds, rss MiB)
    began = time.perf_counter()
    cpu_began = me.cpu_times()
    broker_began = cpu_s(broker)
    next_sample = [args.count // 20]

    def on_chunk(done: int) -> None:
        if done >= next_sample[0] or done == args.count:
            samples.append((done, time.perf_counter() - began, me.memory_info().rss / MIB))
            next_sample[0] += args.count // 20
            if not args.quiet:
                print(
                    f"  {done:>12,} tx  {done / (time.perf_counter() - began):>10,.0f} tx/s  "
                    f"RSS {samples[-1][2]:,.0f} MiB",
                    flush=True,
                )
        if "middle" not in rss and done >= args.count // 2:
            rss["middle"] = me.memory_info().rss / MIB

    stats = run_batch(engine, sink, count=args.count, on_chunk=on_chunk)
    queued_s = time.perf_counter() - began
    report = sink.close(timeout_s=300)
    total_s = time.perf_counter() - began
    cpu = me.cpu_times()
    broker_cpu = cpu_s(broker) - broker_began
    rss["end"] = me.memory_info().rss / MIB
    return {
        "count": stats.transactions,
        "accounts": args.accounts,
        "fraud_rate": args.fraud_rate,
        "seconds_to_queue": round(queued_s, 2),
        "seconds_to_acknowledge": round(total_s, 2),
        "tx_per_s_acknowledged": round(stats.transactions / total_s),
        "labels_per_message": LABELS_PER_MESSAGE,
        "cpu_s_user": round(cpu.user - cpu_began.user, 2),
        "cpu_s_system": round(cpu.system - cpu_began.system, 2),
        "broker_cpu_s": round(broker_cpu, 2),
        "cpu_us_per_tx": round(
            (cpu.user - cpu_began.user + cpu.system - cpu_began.system) / stats.transactions * 1e6,
            2,
        ),
        "broker_cpu_us_per_tx": round(broker_cpu / stats.transactions * 1e6, 2),
        "producer_overrides": args.producer,
        "rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "rss_samples_mib": [round(s[2], 1) for s in samples],
        "delivered": {t: report.delivered(t) for t in (topics.TRANSACTIONS, topics.LABELS)},
        "failed": dict(report.failed),
        "by_scenario": {
            name: int(n)
            for name, n in zip(
                __import__("streamguard.generate.scenarios", fromlist=["SCENARIOS"]).SCENARIOS,
                engine.tx_by_scenario,
                strict=True,
            )
        },
    }


# -- stream mode, tree against tree ------------------------------------------------------

THIS_TREE = "this tree"
STREAM_RUN = ROOT / "benchmarks" / "generator_stream_run.py"
_TS_MS = re.compile(rb'"ts_ms":(\d+)')


def parse_rates(text: str) -> list[int]:
    """'5000,20000' -> [5000, 20000]; every rate a positive whole number of tx/s."""
    rates = [int(part) for part in text.split(",") if part.strip()]
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"rates must be positive tx/s, got {text!r}")
    return rates


def trees(against: str | None) -> dict[str, str]:
    """Label -> the `src` folder to put on PYTHONPATH: the other tree's first, then this one's."""
    mine = {THIS_TREE: str(ROOT / "src")}
    if against is None:
        return mine
    other = Path(against).resolve()
    if not (other / "src" / "streamguard").is_dir():
        raise SystemExit(f"--against {against}: no src/streamguard there")
    return {str(other): str(other / "src"), **mine}


def append_lags_ms(bootstrap: str, since: dict[int, int]) -> list[int]:
    """Kafka append time minus event time of every transaction written after `since`."""
    until = partition_ends(bootstrap, topics.TRANSACTIONS)
    wanted = sum(until[p] - since.get(p, 0) for p in until)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-generator-lag",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topics.TRANSACTIONS, p, since.get(p, 0)) for p in until])
    lags: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while len(lags) < wanted and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                kind, appended = message.timestamp()
                if kind != TIMESTAMP_LOG_APPEND_TIME:
                    raise RuntimeError("the transactions topic must use LogAppendTime")
                found = _TS_MS.search(message.value() or b"")
                if found:
                    lags.append(appended - int(found.group(1)))
    finally:
        consumer.close()
    return lags


def stream_run(
    env: dict[str, str], bootstrap: str, src: str, rate: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One stream-mode run of `rate` tx/s for `args.seconds` with the code in `src`: its
    figures, the broker's count and event -> append latencies included."""
    since = partition_ends(bootstrap, topics.TRANSACTIONS)
    run_env = dict(env, PYTHONPATH=src)
    argv = [sys.executable, str(STREAM_RUN), str(rate), str(args.seconds)]
    argv += [str(accounts_for(rate)), str(args.seed)]
    done = subprocess.run(
        argv, env=run_env, capture_output=True, text=True, timeout=args.seconds + 300, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"stream run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    measured = json.loads(lines[-1])
    lags = summarize(append_lags_ms(bootstrap, since))
    sent = measured["transactions"]
    return {
        "rate": rate,
        "transactions": sent,
        "expected": round(rate * args.seconds),
        "broker_counted": sum(partition_ends(bootstrap, topics.TRANSACTIONS).values())
        - sum(since.values()),
        "accounts": accounts_for(rate),
        "cpu_s": measured["cpu_s"],
        "wall_s": measured["wall_s"],
        "cpu_us_per_tx": round(measured["cpu_s"] / sent * 1e6, 1) if sent else None,
        "cpu_pct_of_core": round(100 * measured["cpu_s"] / measured["wall_s"], 1),
        "event_to_append_ms": lags.as_dict() if lags else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def stream_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rate and tree, the medians over its rounds, and the ratio of each tree's median
    µs/tx and p99 to the first tree's (the --against one) at that rate."""
    rows: list[dict[str, Any]] = []
    for rate in dict.fromkeys(run["rate"] for run in runs):
        first: dict[str, Any] | None = None
        for tree in dict.fromkeys(run["tree"] for run in runs if run["rate"] == rate):
            mine = [run for run in runs if run["rate"] == rate and run["tree"] == tree]
            row = {
                "rate": rate,
                "tree": tree,
                "rounds": len(mine),
                "cpu_us_per_tx": statistics.median(run["cpu_us_per_tx"] for run in mine),
                "cpu_pct_of_core": statistics.median(run["cpu_pct_of_core"] for run in mine),
                "transactions": statistics.median(run["transactions"] for run in mine),
                "append_p50_ms": statistics.median(
                    run["event_to_append_ms"]["p50_ms"] for run in mine
                ),
                "append_p99_ms": statistics.median(
                    run["event_to_append_ms"]["p99_ms"] for run in mine
                ),
            }
            first = first or row
            row["cpu_ratio"] = round(row["cpu_us_per_tx"] / first["cpu_us_per_tx"], 3)
            row["p99_ratio"] = round(row["append_p99_ms"] / first["append_p99_ms"], 3)
            rows.append(row)
    return rows


def stream_main(args: argparse.Namespace) -> int:
    """--stream: each rate with each tree, alternating, `args.rounds` times; then the medians."""
    rates, variants = args.stream, trees(args.against)
    runs: list[dict[str, Any]] = []
    print("starting a private Kafka broker…", flush=True)
    with running_stack(only="kafka", STREAMGUARD_KAFKA_HEAP_MB=args.kafka_heap_mb) as stack:
        bootstrap = stack.settings.bootstrap_servers
        if args.warmup_s > 0:  # a fresh broker's first run is slow: the first tree would pay
            print(f"  warm-up: {args.warmup_s:g} s at {rates[0]:,} tx/s, not counted", flush=True)
            warmup = argparse.Namespace(**dict(vars(args), seconds=args.warmup_s))
            stream_run(stack.env, bootstrap, trees(None)[THIS_TREE], rates[0], warmup)
        for number in range(1, args.rounds + 1):
            for rate in rates:
                for tree, src in variants.items():
                    run = {"round": number, "tree": tree}
                    run.update(stream_run(stack.env, bootstrap, src, rate, args))
                    runs.append(run)
                    lag = run["event_to_append_ms"] or {}
                    print(
                        f"  round {number} {rate:>7,} tx/s {tree}: {run['transactions']:,} tx"
                        f" (broker {run['broker_counted']:,}), {run['cpu_us_per_tx']} µs/tx"
                        f" ({run['cpu_pct_of_core']}% of a core), event->append p50"
                        f" {lag.get('p50_ms')} / p99 {lag.get('p99_ms')} ms",
                        flush=True,
                    )
    rows = stream_summary(runs)
    print(f"\nstream mode, {args.seconds:g} s a run, medians of {args.rounds} round(s):")
    for row in rows:
        print(
            f"  {row['rate']:>7,} tx/s {row['tree']}: {row['cpu_us_per_tx']:.1f} µs/tx"
            f" ({row['cpu_pct_of_core']:.1f}% of a core), event->append p50"
            f" {row['append_p50_ms']:.1f} / p99 {row['append_p99_ms']:.1f} ms;"
            f" x{row['cpu_ratio']} µs/tx, x{row['p99_ratio']} p99"
        )
    result = {"runs": runs, "medians": rows, "cpus": os.cpu_count()}
    path = save(result, "generator-stream")
    print(f"saved {path.relative_to(ROOT)}")
    counted = all(run["broker_counted"] == run["transactions"] for run in runs)
    return 0 if counted else 1


def save(result: dict[str, Any], name: str) -> Path:
    """Write `result` with the command and the time to benchmarks/results/<name>-<time>.json."""
    result["command"] = "python benchmarks/bench_generator.py " + " ".join(sys.argv[1:])
    result["when"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kafka-heap-mb", default="1024")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--producer",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a producer setting over the bulk profile, e.g. compression.type=none (repeatable)",
    )
    parser.add_argument("--no-lock", action="store_true", help="do not wait for the bench lock")
    parser.add_argument(
        "--stream",
        type=parse_rates,
        metavar="RATES",
        help="stream mode at these tx/s (comma-separated) instead of batch mode",
    )
    parser.add_argument(
        "--against",
        metavar="TREE",
        help="with --stream: also run another checkout's code (its src/), alternating",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --stream: runs per rate/tree")
    parser.add_argument(
        "--seconds", type=float, default=20, help="with --stream: each run's length"
    )
    parser.add_argument(
        "--warmup-s", type=float, default=5, help="with --stream: a first run, not counted"
    )
    args = parser.parse_args()

    with LOCK.open("a") as lock:
        if not args.no_lock:
            print(f"waiting for {LOCK}…", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if args.stream:
            return stream_main(args)
        load_before = os.getloadavg()
        print("starting a private Kafka broker…", flush=True)
        with running_stack(only="kafka", STREAMGUARD_KAFKA_HEAP_MB=args.kafka_heap_mb) as stack:
            bootstrap = stack.settings.bootstrap_servers
            before = {t: end_offsets(bootstrap, t) for t in (topics.TRANSACTIONS, topics.LABELS)}
            print(f"generating {args.count:,} transactions in batch mode…", flush=True)
            result = measure(stack.settings, args)
            result["broker_counted"] = {t: end_offsets(bootstrap, t) - before[t] for t in before}
        result["load_average_before"] = [round(x, 2) for x in load_before]
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["cpus"] = os.cpu_count()
    path = save(result, "generator")
    rss = result["rss_mib"]
    print(
        f"\n{result['count']:,} transactions (and as many labels) acknowledged in "
        f"{result['seconds_to_acknowledge']} s: {result['tx_per_s_acknowledged']:,} tx/s "
        f"(labels {result['labels_per_message']} to a message)\n"
        f"CPU: {result['cpu_s_user']} s user + {result['cpu_s_system']} s system in this process "
        f"({result['cpu_us_per_tx']} µs/tx); broker {result['broker_cpu_s']} s "
        f"({result['broker_cpu_us_per_tx']} µs/tx)\n"
        f"RSS: start {rss['start']:,.0f} MiB, middle {rss.get('middle', 0):,.0f} MiB, "
        f"end {rss['end']:,.0f} MiB\n"
        f"broker counted: {result['broker_counted']}; failed: {result['failed'] or 0}\n"
        f"load average before/after: {result['load_average_before']} / "
        f"{result['load_average_after']} on {result['cpus']} CPUs\n"
        f"saved {path.relative_to(ROOT)}"
    )
    counted, delivered = result["broker_counted"], result["delivered"]
    ok = (
        not result["failed"]
        and counted[topics.TRANSACTIONS] == result["count"] == delivered[topics.LABELS]
        and counted[topics.LABELS] >= result["count"] / LABELS_PER_MESSAGE
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
