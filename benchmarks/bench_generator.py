"""Benchmark (not a test) of the generator's batch mode: throughput and memory.

    .venv/bin/python benchmarks/bench_generator.py                 # 10 million transactions
    .venv/bin/python benchmarks/bench_generator.py --count 2000000 # a quicker look

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
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.stackfixture

from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from tests.stackfixture import running_stack  # noqa: E402

from streamguard.generate.delivery import KafkaSink  # noqa: E402
from streamguard.generate.engine import Engine, GeneratorConfig  # noqa: E402
from streamguard.generate.modes import run_batch  # noqa: E402
from streamguard.kafka import topics  # noqa: E402

LOCK = Path("/tmp/streamguard-bench.lock")
MIB = 1024 * 1024


def end_offsets(bootstrap: str, topic: str) -> int:
    """The number of messages in `topic` (sum of its partitions' end offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-generator-probe"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        )
    finally:
        consumer.close()


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
        "messages_per_s": round(2 * stats.transactions / total_s),
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
    args = parser.parse_args()

    with LOCK.open("a") as lock:
        if not args.no_lock:
            print(f"waiting for {LOCK}…", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
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
    result["command"] = "python benchmarks/bench_generator.py " + " ".join(sys.argv[1:])
    result["when"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"generator-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    rss = result["rss_mib"]
    print(
        f"\n{result['count']:,} transactions (and as many labels) acknowledged in "
        f"{result['seconds_to_acknowledge']} s: {result['tx_per_s_acknowledged']:,} tx/s "
        f"({result['messages_per_s']:,} messages/s)\n"
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
    ok = not result["failed"] and all(
        n == result["count"] for n in result["broker_counted"].values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
