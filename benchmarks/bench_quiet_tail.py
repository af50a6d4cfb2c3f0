"""Benchmark of the quiet tail: how long a burst waits for its windowed alert with no traffic after.

    flock /tmp/streamguard-bench.lock .venv/bin/python benchmarks/bench_quiet_tail.py [--bursts N]

A private stack with the default settings (PostgreSQL, Kafka, the rules job; the watermark delay
and the heartbeat interval as shipped) gets N bursts, one at a time: 5 transactions of one new
account 100 ms apart, HIGH_VELOCITY from the 4th, and then nothing until its alert is on
`fraud_alerts`. Only the rules process's heartbeats can close the window. The latency is the
alert's Kafka append time minus its last transaction's (both topics use LogAppendTime, one broker
clock). It prints the bursts missed and the median, p99 and max; the issue's bound is the
watermark delay plus 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Consumer, Message, Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamguard.bench.private_stack import PrivateStack, private_stack  # noqa: E402
from streamguard.domain.models import Channel, FraudAlert, Transaction  # noqa: E402
from streamguard.kafka import topics  # noqa: E402
from streamguard.kafka.client import producer_config  # noqa: E402

BURST = 5
GAP_MS = 100


def burst(account: str, start_ms: int) -> list[Transaction]:
    """BURST small PIX payments of one account GAP_MS apart, stamped from `start_ms`."""
    return [
        Transaction(
            transaction_id=f"{account}-b{n}",
            account_id=account,
            card_token="tok_qt",
            card_last4="1234",
            amount=Decimal("35.00"),
            channel=Channel.PIX,
            merchant_id="M001",
            merchant_name="Padaria",
            merchant_mcc="5411",
            city="São Paulo",
            state="SP",
            lat=-23.55,
            lon=-46.63,
            device_id="dev-qt",
            ip_address="189.1.2.3",
            ts_ms=start_ms + n * GAP_MS,
        )
        for n in range(BURST)
    ]


def send(producer: Producer, txs: list[Transaction]) -> int:
    """Produce and flush; return the last transaction's Kafka append time (ms)."""
    appended: list[int] = []

    def delivered(err: object, message: Message) -> None:
        if err is not None:
            raise RuntimeError(f"delivery failed: {err}")
        appended.append(message.timestamp()[1])

    for item in txs:
        producer.produce(
            topics.TRANSACTIONS, key=item.account_id, value=item.to_wire(), on_delivery=delivered
        )
    if producer.flush(30) != 0 or len(appended) != len(txs):
        raise RuntimeError("the burst was not delivered")
    return max(appended)


def wait_alert(consumer: Consumer, alert_id: str, timeout_s: float) -> int | None:
    """The append time of `alert_id` on fraud_alerts, or None if it did not come in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.2):
            if message.error() is None:
                alert = FraudAlert.model_validate_json(message.value() or b"")
                if alert.alert_id == alert_id:
                    return int(message.timestamp()[1])
    return None


def measure(stack: PrivateStack, bursts: int, timeout_s: float) -> tuple[list[int], int]:
    """Latencies (ms) of the bursts alerted, and how many were not within `timeout_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "group.id": f"bench-quiet-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.FRAUD_ALERTS])
    consumer.consume(1, timeout=5)  # join the group before the first burst
    producer = Producer(producer_config(stack.settings))
    run = uuid.uuid4().hex[:6]
    latencies: list[int] = []
    missed = 0
    try:
        for n in range(bursts):
            account = f"QT-{run}-{n}"
            sent_ms = send(producer, burst(account, int(time.time() * 1000)))
            alert_ms = wait_alert(consumer, f"HIGH_VELOCITY:{account}-b{BURST - 1}", timeout_s)
            if alert_ms is None:
                missed += 1
            else:
                latencies.append(alert_ms - sent_ms)
    finally:
        consumer.close()
    return latencies, missed


def p99(values: list[int]) -> int:
    """The nearest-rank 99th percentile."""
    ranked = sorted(values)
    return ranked[max(0, -(-99 * len(ranked) // 100) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=40)
    parser.add_argument("--timeout-s", type=float, default=60, help="a burst is missed after")
    args = parser.parse_args()
    with private_stack("postgres,kafka,rules", inherit=False) as stack:
        bound_ms = (stack.settings.watermark_delay_s + 3) * 1000
        print(
            f"watermark delay {stack.settings.watermark_delay_s} s, heartbeat "
            f"{stack.settings.heartbeat_interval_s} s, bound {bound_ms:.0f} ms",
            flush=True,
        )
        latencies, missed = measure(stack, args.bursts, args.timeout_s)
    print(f"bursts: {args.bursts}, missed: {missed}")
    if latencies:
        print(
            f"last transaction -> its alert, ms: median {statistics.median(latencies):.0f}, "
            f"p99 {p99(latencies)}, max {max(latencies)}"
        )


if __name__ == "__main__":
    main()
