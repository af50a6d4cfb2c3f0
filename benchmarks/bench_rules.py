"""Benchmark of the Flink SQL rules job: catch-up throughput, bounded state, alert latency.

    flock /tmp/streamguard-bench.lock .venv/bin/python benchmarks/bench_rules.py [--preload N]

1. Throughput: N transactions are preloaded into `transactions`, then the rules job (the stack's
   own `streamguard up --only rules`, every rule) starts from the earliest offset. The first and
   the last transaction are HIGH_AMOUNT sentinels; the rate is N over the gap between their
   alerts' Kafka append times, so start-up is not counted. The rules process's CPU time over
   the same stretch, per transaction (µs/tx), is steadier than the rate on a shared machine.
2. Latency: then transactions arrive live at --rate tx/s; for every alert, latency is its append
   time on `fraud_alerts` minus its transaction's append time on `transactions` (both topics
   use LogAppendTime, one broker clock). Stateless rules and windowed rules are reported apart:
   a windowed alert waits for the watermark (the watermark delay plus a little).
3. State: the JVM heap used (the low of each 20 s is what survives GC), the process RSS and
   the checkpointed state size are sampled all along; bounded state levels off as the run goes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.stackfixture import StackHandle, running_stack  # noqa: E402

from streamguard.config import Settings  # noqa: E402
from streamguard.kafka import topics  # noqa: E402
from streamguard.kafka.client import PARTITIONER  # noqa: E402
from streamguard.kafka.heartbeat import is_heartbeat  # noqa: E402
from streamguard.stack.process import Paths, read_pid  # noqa: E402

STATELESS = {"HIGH_AMOUNT", "NIGHT_SPENDING"}
CITIES = [(-23.5505, -46.6333), (-22.9068, -43.1729), (-19.9167, -43.9345), (-8.0476, -34.877)]
TEMPLATE = (
    '{"amount":%s,"schema_version":1,"transaction_id":"%s","account_id":"%s",'
    '"card_token":"tok_%s","card_last4":"4242","currency":"BRL","channel":"PIX",'
    '"merchant_id":"M001","merchant_name":"Magazine Luiza","merchant_mcc":"5311",'
    '"city":"Sao Paulo","state":"SP","lat":%s,"lon":%s,"device_id":"dev-%s",'
    '"ip_address":"189.1.2.3","ts_ms":%d}'
)


@dataclass
class Samples:
    """Resource samples: (seconds since start, heap MB, RSS MB, checkpointed state MB)."""

    rows: list[tuple[float, float, float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def message(
    rng: random.Random, n: int, accounts: int, ts_ms: int, run: str, population: str = ""
) -> tuple[str, bytes]:
    """Transaction n of `run`, from one of the `accounts` accounts of `population` (run's own)."""
    account = rng.randrange(accounts)
    roll = rng.random()
    if roll < 0.004:
        amount = f"{rng.uniform(3500, 9000):.2f}"
    elif roll < 0.02:
        amount = f"{rng.uniform(1, 9.9):.2f}"
    else:
        amount = f"{min(rng.lognormvariate(4.0, 1.0), 2500):.2f}"
    lat, lon = CITIES[account % len(CITIES)] if rng.random() > 0.001 else CITIES[-1]
    acc = f"{population or run}-{account:07d}"
    tx = TEMPLATE % (amount, f"{run}-{n}", acc, acc, lat, lon, acc, ts_ms)
    return acc, tx.encode()


def producer(stack: StackHandle) -> Producer:
    return Producer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
            "compression.type": "lz4",
            "partitioner": PARTITIONER,
        }
    )


def produce(p: Producer, key: str, value: bytes) -> None:
    while True:
        try:
            p.produce(topics.TRANSACTIONS, key=key, value=value)
            return
        except BufferError:
            p.poll(0.05)


def sentinel(run: str, name: str, ts_ms: int) -> tuple[str, bytes]:
    acc = f"{run}-{name}"
    return acc, (TEMPLATE % ("9999.99", acc, acc, acc, -23.55, -46.63, acc, ts_ms)).encode()


def preload(stack: StackHandle, count: int, accounts: int, run: str, start_ms: int) -> float:
    """Produce `count` transactions spread over event time at 2,000 tx/s; return seconds taken."""
    rng = random.Random(7)
    p = producer(stack)
    began = time.monotonic()
    produce(p, *sentinel(run, "FIRST", start_ms))
    for n in range(count):
        produce(p, *message(rng, n, accounts, start_ms + n // 2, run))
        if n % 50_000 == 0:
            p.poll(0)
    produce(p, *sentinel(run, "LAST", start_ms + count // 2 + 1))
    assert p.flush(120) == 0
    return time.monotonic() - began


def rest(stack: StackHandle, path: str) -> dict:
    url = f"http://localhost:{stack.settings.flink_ui_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def rules_root(stack: StackHandle) -> psutil.Process:
    """The rules process, read from its PID file."""
    return psutil.Process(read_pid(Paths(stack.settings.state_path).pidfile("rules")))


def process_tree(root: psutil.Process) -> list[psutil.Process]:
    """`root` and every process below it (the rules job's JVM runs as a child)."""
    return [root, *root.children(recursive=True)]


def rules_cpu_s(stack: StackHandle) -> float:
    """CPU seconds (user + system) the rules process and its children have used so far."""
    return sum(sum(p.cpu_times()[:2]) for p in process_tree(rules_root(stack)))


def sample_resources(stack: StackHandle, samples: Samples, began: float) -> None:
    root = rules_root(stack)
    while not samples.stop.wait(2.0):
        try:
            rss = sum(p.memory_info().rss for p in process_tree(root))
            tm = rest(stack, "/taskmanagers")["taskmanagers"][0]["id"]
            metrics = rest(stack, f"/taskmanagers/{tm}/metrics?get=Status.JVM.Memory.Heap.Used")
            heap = float(metrics[0]["value"]) if metrics else 0.0
            jobs = [j for j in rest(stack, "/jobs/overview")["jobs"] if j["state"] == "RUNNING"]
            state = 0.0
            if jobs:
                chk = rest(stack, f"/jobs/{jobs[0]['jid']}/checkpoints").get("latest") or {}
                state = float((chk.get("completed") or {}).get("checkpointed_size", 0))
            samples.rows.append(
                (time.monotonic() - began, heap / 2**20, rss / 2**20, state / 2**20)
            )
        except (OSError, psutil.Error, KeyError, IndexError, ValueError):
            continue


def alert_consumer(stack: StackHandle) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "group.id": f"bench-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topics.FRAUD_ALERTS])
    return c


def wait_for_alerts(
    consumer: Consumer, wanted: set[str], timeout_s: float, seen: dict[str, tuple[int, dict]]
) -> None:
    """Read alerts into `seen` (alert_id -> (append ms, alert)) until `wanted` all arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not wanted <= seen.keys():
        for msg in consumer.consume(5000, timeout=0.5):
            if msg.error() is None:
                alert = json.loads(msg.value())
                seen.setdefault(alert["alert_id"], (msg.timestamp()[1], alert))
    if not wanted <= seen.keys():
        raise SystemExit(f"timed out waiting for {sorted(wanted - seen.keys())}")


def live(
    stack: StackHandle, rate: int, seconds: int, accounts: int, run: str, population: str
) -> None:
    """Produce at `rate` tx/s with event time = now, in 10 ms ticks, from the same accounts."""
    rng = random.Random(11)
    p = producer(stack)
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < seconds:
        due = int((time.monotonic() - began) * rate)
        now = int(time.time() * 1000)
        while n < due:
            produce(p, *message(rng, n, accounts, now, run, population))
            n += 1
        p.poll(0)
        time.sleep(0.005)
    p.flush(60)


def append_times(stack: StackHandle, wanted: set[str]) -> dict[str, int]:
    """transaction_id -> its append time on `transactions`, for the wanted ids."""
    c = Consumer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "group.id": f"bench-tx-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    meta = c.list_topics(topics.TRANSACTIONS, timeout=10).topics[topics.TRANSACTIONS]
    ends = {}
    for part in meta.partitions:
        ends[part] = c.get_watermark_offsets(TopicPartition(topics.TRANSACTIONS, part))[1]
    c.assign([TopicPartition(topics.TRANSACTIONS, part, 0) for part in meta.partitions])
    found: dict[str, int] = {}
    done: set[int] = set()
    while len(done) < len(ends):
        for msg in c.consume(10_000, timeout=1.0):
            if msg.error() is not None:
                continue
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
            if is_heartbeat(msg.key(), msg.value()):
                continue
            value = msg.value()
            start = value.find(b'"transaction_id":"') + 18
            tx_id = value[start : value.index(b'"', start)].decode()
            if tx_id in wanted:
                found[tx_id] = msg.timestamp()[1]
    c.close()
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_state(samples: Samples, phases: list[tuple[str, float, float]]) -> None:
    print("\nState over time (heap used MB / RSS MB / last checkpoint MB), per 20 s:")
    rows = samples.rows
    if not rows:
        print("  no samples")
        return
    bucket: dict[int, list[tuple[float, float, float, float]]] = {}
    for row in rows:
        bucket.setdefault(int(row[0] // 20), []).append(row)
    for key in sorted(bucket):
        values = bucket[key]
        phase = next((name for name, a, b in phases if a <= key * 20 < b), "")
        print(
            f"  t={key * 20:4d}s {phase:10s} heap {min(v[1] for v in values):6.0f}-"
            f"{max(v[1] for v in values):6.0f}  rss {max(v[2] for v in values):6.0f}"
            f"  checkpoint {values[-1][3]:6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--heap-mb", type=int, default=3072)
    parser.add_argument("--jvm-flags", default="-XX:+UseParallelGC", help="extra flags for Flink")
    parser.add_argument("--parallelism", type=int, default=Settings().flink_parallelism)
    parser.add_argument(
        "--checkpoint-s", type=int, default=Settings().checkpoint_interval_s, help="interval"
    )
    args = parser.parse_args()
    run = f"B{int(time.time()) % 100000}"
    env = {
        "STREAMGUARD_FLINK_HEAP_MB": str(args.heap_mb),
        "STREAMGUARD_KAFKA_HEAP_MB": "1024",
        "STREAMGUARD_CHECKPOINT_INTERVAL_S": str(args.checkpoint_s),
        "STREAMGUARD_FLINK_PARALLELISM": str(args.parallelism),
        "STREAMGUARD_WATERMARK_DELAY_S": "2",
        "STREAMGUARD_IDLE_TIMEOUT_S": "5",
        # the rules process passes JVM_ARGS on to Flink's JVM (heap, collector)
        "JVM_ARGS": f"-Xmx{args.heap_mb}m -Xms{args.heap_mb}m {args.jvm_flags}",
    }
    with running_stack(only="kafka", **env) as stack:
        start_ms = int(time.time() * 1000) - args.preload // 2 - 600_000
        took = preload(stack, args.preload, args.accounts, run, start_ms)
        print(f"preloaded {args.preload:,} transactions in {took:.1f} s")
        print(f"rules JVM: {env['JVM_ARGS']}; {args.accounts:,} accounts, 2,000 tx/event-s")
        print(f"checkpoint every {args.checkpoint_s} s; parallelism {args.parallelism}")
        consumer = alert_consumer(stack)
        began = time.monotonic()
        stack.cli("up", "--only", "kafka,rules", timeout=300)
        samples = Samples()
        sampler = threading.Thread(
            target=sample_resources, args=(stack, samples, began), daemon=True
        )
        sampler.start()
        seen: dict[str, tuple[int, dict]] = {}
        first, last = f"HIGH_AMOUNT:{run}-FIRST", f"HIGH_AMOUNT:{run}-LAST"
        wait_for_alerts(consumer, {first}, timeout_s=1800, seen=seen)
        cpu_at_first = rules_cpu_s(stack)
        wait_for_alerts(consumer, {last}, timeout_s=1800, seen=seen)
        cpu_s = rules_cpu_s(stack) - cpu_at_first
        caught_up = time.monotonic() - began
        gap_s = (seen[last][0] - seen[first][0]) / 1000
        by_rule: dict[str, int] = {}
        for _, alert in seen.values():
            by_rule[alert["rule_id"]] = by_rule.get(alert["rule_id"], 0) + 1
        print(f"\nCatch-up: {args.preload:,} tx from the earliest offset")
        print(f"  first to last sentinel alert: {gap_s:.1f} s -> {args.preload / gap_s:,.0f} tx/s")
        print(
            f"  rules CPU between the sentinels: {cpu_s:.1f} s -> "
            f"{cpu_s / args.preload * 1e6:.1f} µs/tx ({100 * cpu_s / gap_s:.0f}% of a core)"
        )
        print(f"  start of job to caught up: {caught_up:.1f} s (JVM and job start included)")
        print(f"  alerts by rule so far: {dict(sorted(by_rule.items()))}")

        live_run = run + "L"
        live_began = time.monotonic() - began
        # the same accounts as the preload: state must level off once they have all been seen
        live(stack, args.rate, args.seconds, args.accounts, live_run, population=run)
        marker = f"{live_run}-END"
        p = producer(stack)
        produce(p, *sentinel(live_run, "END", int(time.time() * 1000)))
        p.flush(30)
        wait_for_alerts(consumer, {f"HIGH_AMOUNT:{marker}"}, timeout_s=300, seen=seen)
        # let the windowed alerts of the last seconds arrive too
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            wait_for_alerts(consumer, set(), timeout_s=1, seen=seen)
        samples.stop.set()
        live_alerts = [
            (ts, alert)
            for ts, alert in seen.values()
            if alert["transaction_id"].startswith(f"{live_run}-")
            and alert["transaction_id"] != marker
        ]
        tx_times = append_times(stack, {alert["transaction_id"] for _, alert in live_alerts})
        groups: dict[str, list[float]] = {"stateless": [], "windowed": []}
        for ts, alert in live_alerts:
            if alert["transaction_id"] in tx_times:
                kind = "stateless" if alert["rule_id"] in STATELESS else "windowed"
                groups[kind].append(ts - tx_times[alert["transaction_id"]])
        print(f"\nLatency at {args.rate:,} tx/s for {args.seconds} s (append to append, ms):")
        for kind, values in groups.items():
            if values:
                print(
                    f"  {kind:9s} n={len(values):6d}  p50 {statistics.median(values):7.0f}"
                    f"  p99 {percentile(values, 0.99):7.0f}  max {max(values):7.0f}"
                )
        phases = [
            ("catch-up", 0, caught_up),
            ("idle", caught_up, live_began),
            ("live", live_began, 1e9),
        ]
        report_state(samples, phases)
        consumer.close()


if __name__ == "__main__":
    main()
