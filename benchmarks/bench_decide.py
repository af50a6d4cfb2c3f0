"""Decision service benchmarks (a script, not a test). Prints figures; run it alone:

    flock /tmp/streamguard-bench.lock .venv/bin/python benchmarks/bench_decide.py [--tx 300000]

1. validate: messages/s through split(), fast path vs pydantic alone (CPU time, no I/O).
2. store: a backlog of transactions (1% with an alert) already in Kafka, drained by the decision
   service into PostgreSQL: stored tx/s, median of the batches and overall.
3. latency: transactions at a steady rate (5,000 tx/s by default) with 1% alerted, the service
   running as its own process; decision latency from the alert's Kafka append to the decision
   (PostgreSQL clock at insert, and Kafka append of the published decision, which is after commit)
   and the CPU the service and its backends use meanwhile; once per --linger-ms value.

It starts a private PostgreSQL + Kafka on free ports (the project's own `streamguard up`), unless
--here is given, which uses the STREAMGUARD_* environment's stack.

--instances 1,2 compares the store step across decision instance counts instead, side by side in
one run (6 partitions a topic, drains alternating 1 and 2 instances in one group, each started
and settled before its backlog is produced), and skips the other steps:

    flock /tmp/streamguard-bench.lock flock /tmp/streamguard-itest.lock \
        .venv/bin/python benchmarks/bench_decide.py --instances 1,2 --tx 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamguard.config import Settings  # noqa: E402
from streamguard.decide.parse import split  # noqa: E402
from streamguard.domain.models import FraudAlert  # noqa: E402
from streamguard.generate.simple import random_transaction  # noqa: E402
from streamguard.kafka import topics  # noqa: E402
from streamguard.kafka.client import PARTITIONER  # noqa: E402

#: The drains use seeds 7, 8, ...; these stay clear of them, or the latency run would resend
#: transactions and alerts already stored, and decide nothing.
RAW_COPY_SEED = 100_000
LATENCY_SEED = 100_001  # and up, one per latency step


#: Partitions a topic for --instances: 2 instances then hold 9 of the 18 each.
INSTANCE_PARTITIONS = 6


@contextlib.contextmanager
def stack(here: bool, partitions: int | None = None) -> Iterator[tuple[Settings, dict[str, str]]]:
    """A private PostgreSQL + Kafka (`partitions` a topic, if given), or the environment's."""
    if here:
        yield Settings(), dict(os.environ)
        return
    from tests.stackfixture import running_stack

    sizing = {}
    if partitions:
        sizing = {
            "STREAMGUARD_TRANSACTIONS_PARTITIONS": str(partitions),
            "STREAMGUARD_ALERTS_PARTITIONS": str(partitions),
        }
    with running_stack(only="postgres,kafka", **sizing) as handle:
        yield handle.settings, handle.env


def load_block_list(settings: Settings) -> int:
    """The generator's blocklist ids on the block list, as a deployment would have them: the
    service then checks every transaction against a non-empty list."""
    from streamguard.bench import load
    from streamguard.store import lists
    from streamguard.store.db import connect

    with connect(settings) as conn:
        added = sum(
            lists.add(conn, "BLOCK", entity_type, value, "bench")
            for entity_type, values in load.blocklist().items()
            for value in values
        )
        conn.commit()
    return added


def messages(
    count: int, alert_share: float, seed: int = 7, ids: str = "generator"
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) for `count` transactions, with an alert after `alert_share` of them.

    `ids`: "generator" gives the ids `streamguard generate` sends (a run's UUID-layout prefix and
    a sequence number, so they sort in arrival order); "random" gives random UUIDs, the worst
    case for the ledger's primary key (every insert lands on a random index page).
    """
    rng = random.Random(seed)
    prefix = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-a000-"
    out = []
    for n in range(count):
        tx = random_transaction(rng, accounts=5000)
        if ids == "generator":
            tx = tx.model_copy(update={"transaction_id": f"{prefix}{n:012x}"})
        out.append((topics.TRANSACTIONS, tx.account_id.encode(), tx.to_wire()))
        if rng.random() < alert_share:
            alert = FraudAlert(
                alert_id=f"BENCH:{tx.transaction_id}",
                rule_id="BENCH",
                severity="HIGH",
                score_weight=40,
                transaction_id=tx.transaction_id,
                account_id=tx.account_id,
                amount=tx.amount,
                ts_ms=tx.ts_ms,
            )
            out.append(
                (topics.FRAUD_ALERTS, tx.account_id.encode(), alert.model_dump_json().encode())
            )
    return out


def produce(settings: Settings, batch: list[tuple[str, bytes, bytes]]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "linger.ms": 20,
            "partitioner": PARTITIONER,
        }
    )
    for topic, key, value in batch:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def bench_parse(batch: list[tuple[str, bytes, bytes]]) -> tuple[float, float]:
    """Messages/s through split(): with the fast path, and with pydantic alone (side by side)."""
    from streamguard.decide import fastparse

    class Fake:
        def __init__(self, i: int, topic: str, value: bytes) -> None:
            self.i, self.t, self.v = i, topic, value

        def topic(self) -> str:
            return self.t

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return self.i

        def value(self) -> bytes:
            return self.v

        def key(self) -> bytes:
            return b""

        def timestamp(self) -> tuple[int, int]:
            return (2, 1_795_000_000_000)

    fakes = [Fake(i, t, v) for i, (t, _, v) in enumerate(batch)]

    def rate() -> float:
        started = time.process_time()
        for start in range(0, len(fakes), 5000):
            split(fakes[start : start + 5000])  # type: ignore[arg-type]
        return len(fakes) / (time.process_time() - started)

    fast_path = fastparse.ledger_row
    fast, slow = [], []
    try:
        for _ in range(3):
            fastparse.ledger_row = fast_path
            fast.append(rate())
            fastparse.ledger_row = lambda *_: None  # type: ignore[assignment]
            slow.append(rate())
    finally:
        fastparse.ledger_row = fast_path
    return statistics.median(fast), statistics.median(slow)


@contextlib.contextmanager
def service_process(settings: Settings, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The decision service as its own process, logging to bench-decide.log; stopped after."""
    with open(settings.state_path / "bench-decide.log", "ab") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "streamguard.decide"], env=env, stdout=log, stderr=log
        )
        try:
            yield service
        finally:
            service.terminate()
            service.wait(30)


def bench_store(
    settings: Settings, env: dict[str, str], expected_tx: int, already: int = 0
) -> dict[str, float]:
    """Drain the backlog with the real service process; tx/s, and CPU per tx of each side.

    `already` transactions were stored by earlier rounds; the service stops at `expected_tx`.
    """
    import psutil

    samples: list[tuple[float, int]] = []
    with (
        service_process(settings, env) as service,
        psycopg.connect(settings.db_url, autocommit=True) as conn,
    ):
        backends: list[psutil.Process] = []
        python = psutil.Process(service.pid)
        while not samples or samples[-1][1] < expected_tx:
            if service.poll() is not None:
                raise RuntimeError("the service exited; see bench-decide.log")
            (stored,) = conn.execute(
                "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats"
            ).fetchone() or (0,)
            if stored > already and not backends:
                backends = list(map(psutil.Process, backend_pids(settings)))
                cpu0 = (_cpu(python), sum(map(_cpu, backends)))
            samples.append((time.perf_counter(), int(stored)))
            time.sleep(0.1)
        cpu1 = (_cpu(python), sum(map(_cpu, backends)))
    started = next(s for s in samples if s[1] > already)
    done = samples[-1]
    count = done[1] - started[1]
    return {
        "tx_per_s": count / (done[0] - started[0]),
        "python_us": (cpu1[0] - cpu0[0]) / count * 1e6,
        "postgres_us": (cpu1[1] - cpu0[1]) / count * 1e6,
    }


@contextlib.contextmanager
def decide_instances(
    settings: Settings, env: dict[str, str], count: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` decision processes in one group (decide-1, decide-2, ...), settled: every partition
    claimed by one of them. Stopped after."""
    ids = [f"decide-{i}" for i in range(1, count + 1)]
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                service_process(settings, {**env, "STREAMGUARD_DECIDE_INSTANCE_ID": instance})
            )
            for instance in ids
        ]
        deadline = time.monotonic() + 90
        with psycopg.connect(settings.db_url, autocommit=True) as conn:
            while True:
                owners = {
                    owner
                    for (owner,) in conn.execute(
                        "SELECT owner FROM partition_owners WHERE group_id = 'streamguard-decide'"
                    )
                }
                if owners == set(ids):
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"instances did not settle (owners {owners})")
                time.sleep(0.2)
        time.sleep(2)  # let a late rebalance finish
        yield processes


def bench_store_instances(
    settings: Settings, env: dict[str, str], count: int, backlog: list, already: int
) -> dict[str, float]:
    """Settle `count` instances, then produce the backlog and time its drain (stored tx/s)."""
    expected = already + sum(topic == topics.TRANSACTIONS for topic, _, _ in backlog)
    with (
        decide_instances(settings, env, count) as processes,
        psycopg.connect(settings.db_url, autocommit=True) as conn,
    ):
        produce(settings, backlog)
        samples: list[tuple[float, int]] = []
        while not samples or samples[-1][1] < expected:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("an instance exited; see bench-decide.log")
            (stored,) = conn.execute(
                "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats"
            ).fetchone() or (0,)
            samples.append((time.perf_counter(), int(stored)))
            time.sleep(0.05)
    started = next(s for s in samples if s[1] > already)
    done = samples[-1]
    return {"tx_per_s": (done[1] - started[1]) / (done[0] - started[0])}


def compare_instances(settings: Settings, env: dict[str, str], args: argparse.Namespace) -> None:
    """The store step with each instance count, alternating, `rounds` drains each."""
    counts: list[int] = args.instances
    rates: dict[int, list[float]] = {n: [] for n in counts}
    drains = [n for _ in range(args.rounds) for n in counts]
    for drain, count in enumerate(drains):
        backlog = messages(args.tx, 0.01, 7 + drain, args.ids)
        figures = bench_store_instances(settings, env, count, backlog, already=drain * args.tx)
        rates[count].append(figures["tx_per_s"])
    print(
        f"store: {args.tx:,} tx backlogs (+1% alerts), {INSTANCE_PARTITIONS} partitions a topic,"
        f" {args.rounds} round(s) per instance count, alternating:"
    )
    medians = {n: statistics.median(r) for n, r in rates.items()}
    for count, runs in rates.items():
        each = ", ".join(f"{r:,.0f}" for r in runs)
        print(f"  {count} instance(s): {medians[count]:,.0f} tx/s median ({each})")
    first, last = counts[0], counts[-1]
    if first != last:
        print(f"  {last} / {first} instance(s): {medians[last] / medians[first]:.2f}x")


def drain_variants(switch_ms: list[float], against: str | None) -> dict[str, dict[str, str]]:
    """What the drains alternate between, each a label and the service's extra environment:
    the GIL switch intervals, or (with --against) another checkout's code and this one's."""
    if against is None:
        return {
            f"switch {ms:>4} ms": {"STREAMGUARD_DECIDE_GIL_SWITCH_MS": str(ms)} for ms in switch_ms
        }
    src = str(Path(against).resolve() / "src")
    return {f"code in {against}": {"PYTHONPATH": src}, "this checkout": {}}


def _cpu(process: object) -> float:
    times = process.cpu_times()  # type: ignore[attr-defined]
    return float(times.user + times.system)


def bench_raw_copy(
    settings: Settings, batch: list[tuple[str, bytes, bytes]], per_commit: int
) -> float:
    """The ceiling: pre-formatted lines COPYed straight into transactions, `per_commit` (the
    service's batch) per commit."""
    from streamguard.decide import fastparse
    from streamguard.store.ledger import TX_COLUMNS

    rows = [
        fastparse.ledger_row(value, None) for topic, _, value in batch if topic == "transactions"
    ]
    lines = [row.copy for row in rows if row is not None]
    chunks = ["".join(lines[i : i + per_commit]) for i in range(0, len(lines), per_commit)]
    columns = ", ".join(TX_COLUMNS)
    with psycopg.connect(settings.db_url) as conn:
        started = time.perf_counter()
        for chunk in chunks:
            with conn.cursor() as cur, cur.copy(f"COPY transactions ({columns}) FROM STDIN") as cp:
                cp.write(chunk)
            conn.commit()
        elapsed = time.perf_counter() - started
    return len(lines) / elapsed


def bench_latency(
    settings: Settings, env: dict[str, str], rate: int, seconds: int, seed: int
) -> dict[str, float]:
    """Steady load against the service process: latency percentiles in ms, and the CPU the
    service and its PostgreSQL backends used meanwhile (% of one core)."""
    import psutil

    with service_process(settings, env) as service:
        time.sleep(3)
        processes = [psutil.Process(service.pid), *map(psutil.Process, backend_pids(settings))]
        batch = messages(rate * seconds, 0.01, seed=seed)
        producer = Producer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "linger.ms": 2,
                "partitioner": PARTITIONER,
            }
        )
        tick = started = time.perf_counter()
        cpu0 = sum(map(_cpu, processes))
        per_tick = rate // 100
        since = time.time()
        for i in range(0, len(batch), per_tick):
            for topic, key, value in batch[i : i + per_tick]:
                producer.produce(topic, key=key, value=value)
            producer.poll(0)
            tick += 0.01
            time.sleep(max(0.0, tick - time.perf_counter()))
        producer.flush(60)
        cpu = (sum(map(_cpu, processes)) - cpu0) / (time.perf_counter() - started)
        time.sleep(3)
        return {**latency_figures(settings, since), "cpu_percent": 100 * cpu}


def backend_pids(settings: Settings) -> list[int]:
    """The PostgreSQL backends of the service's connections, however many it keeps."""
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'streamguard-decide'"
        ).fetchall()
    return [pid for (pid,) in rows]


def latency_figures(settings: Settings, since: float) -> dict[str, float]:
    with psycopg.connect(settings.db_url) as conn:
        rows = conn.execute(
            "SELECT transaction_id, version,"
            " EXTRACT(EPOCH FROM decided_at - trigger_append_at) * 1000,"
            " EXTRACT(EPOCH FROM trigger_append_at) * 1000"
            " FROM decision_history WHERE trigger = 'alert' AND decided_at > to_timestamp(%s)",
            (since,),
        ).fetchall()
    db_ms = sorted(float(r[2]) for r in rows)
    alert_append = {(r[0], r[1]): float(r[3]) for r in rows}
    kafka_ms = sorted(kafka_decision_latencies(settings, alert_append))

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    figures: dict[str, float] = {"decisions": len(db_ms)}
    for name, values in (("db", db_ms), ("kafka", kafka_ms)):
        for q in (0.5, 0.95, 0.99):
            figures[f"{name}_p{int(q * 100)}"] = pct(values, q)
        figures[f"{name}_max"] = values[-1] if values else float("nan")
    return figures


def kafka_decision_latencies(
    settings: Settings, alert_append: dict[tuple[str, int], float]
) -> list[float]:
    """Append time of each published decision minus its alert's append time."""
    import json

    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"bench-{time.time()}",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topics.FRAUD_DECISIONS, timeout=10)
    parts = [
        TopicPartition(topics.FRAUD_DECISIONS, p, 0)
        for p in meta.topics[topics.FRAUD_DECISIONS].partitions
    ]
    consumer.assign(parts)
    out, idle = [], 0
    while idle < 5:
        got = consumer.consume(10_000, 1.0)
        idle = 0 if got else idle + 1
        for m in got:
            value = m.value()
            if m.error() or value is None:
                continue
            d = json.loads(value)
            key = (d["transaction_id"], d["version"])
            if key in alert_append:
                out.append(m.timestamp()[1] - alert_append[key])
    consumer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=300_000, help="backlog size for the store run")
    parser.add_argument("--rate", type=int, default=5000, help="tx/s for the latency run")
    parser.add_argument("--seconds", type=int, default=30, help="length of the latency run")
    parser.add_argument("--here", action="store_true", help="use the environment's stack")
    parser.add_argument(
        "--ids",
        choices=("generator", "random"),
        default="generator",
        help="transaction ids as the generator sends them, or random UUIDs (the worst case)",
    )
    parser.add_argument(
        "--switch-ms",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[5.0, 0.5],
        help="GIL switch intervals to compare, comma-separated (Python's default is 5)",
    )
    parser.add_argument(
        "--against",
        metavar="CHECKOUT",
        help="alternate drains between another checkout's service (e.g. a git worktree of main)"
        " and this one's, at the default switch interval",
    )
    parser.add_argument("--rounds", type=int, default=2, help="drains per variant")
    parser.add_argument(
        "--linger-ms",
        type=lambda text: [float(x) for x in text.split(",")],
        help="poll lingers to run the latency step with, one after the other (e.g. 0,20);"
        " default: the setting",
    )
    parser.add_argument(
        "--batch-size", type=int, default=0, help="the service's batch (default: its setting)"
    )
    parser.add_argument(
        "--instances",
        type=lambda text: [int(x) for x in text.split(",")],
        help="compare the store step across decision instance counts (e.g. 1,2) and stop there",
    )
    args = parser.parse_args()
    if args.instances:
        with stack(args.here, INSTANCE_PARTITIONS) as (settings, env):
            if args.batch_size:
                env = {**env, "STREAMGUARD_DECIDE_BATCH_SIZE": str(args.batch_size)}
            print(f"block list: {load_block_list(settings)} entries; transaction ids: {args.ids}")
            compare_instances(settings, env, args)
        return
    backlog = messages(args.tx, 0.01, ids=args.ids)
    fast, slow = bench_parse(backlog)
    print(
        f"validate (CPU, one core): fast path {fast:,.0f} msg/s, pydantic only {slow:,.0f} msg/s"
        f" ({fast / slow:.2f}x)"
    )
    with stack(args.here) as (settings, env):
        if args.batch_size:
            env = {**env, "STREAMGUARD_DECIDE_BATCH_SIZE": str(args.batch_size)}
        batch_size = int(env.get("STREAMGUARD_DECIDE_BATCH_SIZE", settings.decide_batch_size))
        listed = load_block_list(settings)
        print(
            f"service batch: {batch_size} (this checkout's setting); transaction ids: {args.ids};"
            f" block list: {listed} entries"
        )
        variants = drain_variants(args.switch_ms, args.against)
        rounds: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
        drains = [label for _ in range(args.rounds) for label in variants]
        for drain, label in enumerate(drains):
            produce(
                settings, backlog if drain == 0 else messages(args.tx, 0.01, 7 + drain, args.ids)
            )
            stored = drain * args.tx
            run_env = {**env, **variants[label]}
            rounds[label].append(bench_store(settings, run_env, stored + args.tx, already=stored))
        print(
            f"store: {args.tx:,} tx backlogs (+1% alerts) drained by the service process,"
            f" {args.rounds} round(s) per variant, alternating:"
        )
        medians = {
            label: statistics.median(r["tx_per_s"] for r in runs) for label, runs in rounds.items()
        }
        for label, runs in rounds.items():
            each = ", ".join(f"{r['tx_per_s']:,.0f}" for r in runs)
            print(
                f"  {label}: {medians[label]:,.0f} tx/s median ({each}); CPU per tx: service"
                f" {statistics.median(r['python_us'] for r in runs):.1f} us, PostgreSQL backends"
                f" {statistics.median(r['postgres_us'] for r in runs):.1f} us"
            )
        first, last = list(variants)[0], list(variants)[-1]
        if first != last:
            print(f"  {last} / {first}: {medians[last] / medians[first]:.2f}x")
        ceiling = bench_raw_copy(
            settings, messages(args.tx // 2, 0.0, seed=RAW_COPY_SEED, ids=args.ids), batch_size
        )
        print(
            f"raw COPY of ready lines into transactions (same run): {ceiling:,.0f} tx/s;"
            f" {last} reaches {medians[last] / ceiling:.0%} of it"
        )
        for index, linger in enumerate(args.linger_ms or [settings.decide_linger_ms]):
            run_env = {**env, "STREAMGUARD_DECIDE_LINGER_MS": str(linger)}
            seed = LATENCY_SEED + index
            figures = bench_latency(settings, run_env, args.rate, args.seconds, seed)
            print(
                f"latency at {args.rate:,} tx/s for {args.seconds} s, poll linger {linger} ms:"
                f" {figures['decisions']:.0f} alert-triggered decisions; service and its"
                f" PostgreSQL backends {figures['cpu_percent']:.0f}% of a core."
                " ms from the alert's Kafka append:"
            )
            for name, label in (
                ("db", "to decided_at (in PG)"),
                ("kafka", "to decision on Kafka"),
            ):
                cells = "  ".join(
                    f"{q} {figures[f'{name}_{q}']:7.1f}" for q in ("p50", "p95", "p99", "max")
                )
                print(f"  {label:24s} {cells}")


if __name__ == "__main__":
    main()
