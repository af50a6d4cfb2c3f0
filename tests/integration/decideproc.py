"""Helpers for the decision-service tests: run the real service as a process, produce, wait."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from streamguard.domain.models import FraudAlert, FraudLabel, Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from tests.factories import make_transaction
from tests.stackfixture import StackHandle


@contextmanager
def decision_service(
    handle: StackHandle, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m streamguard.decide` against the stack, ready once its partitions are assigned."""
    with log.open("ab") as out:
        process = start_service(handle, out, **env)
        try:
            wait_for_log(log, "assigned", process)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def start_service(handle: StackHandle, out: Any, **env: str) -> subprocess.Popen[bytes]:
    """Start the service process (the caller stops it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamguard.decide"],
        env={**handle.env, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def wait_for_log(log: Path, word: str, process: subprocess.Popen[bytes], timeout_s=60) -> None:
    """Wait until the log shows `word`; fail with the log if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if word in text:
            return
        if process.poll() is not None:
            raise AssertionError(f"decision service exited {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {word!r} in the service log after {timeout_s} s:\n{text[-3000:]}")


def wait_for(
    conn: psycopg.Connection,
    query: str,
    params: Sequence[Any],
    predicate: Callable[[list[tuple]], bool],
    timeout_s: float = 60,
) -> list[tuple]:
    """Run the query until the predicate holds on its rows; return the last rows either way."""
    deadline = time.monotonic() + timeout_s
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        rows = conn.execute(query, params).fetchall()
        conn.rollback()
        if predicate(rows):
            return rows
        time.sleep(0.3)
    return rows


def producer(handle: StackHandle) -> Producer:
    """The project's producer settings (idempotent, murmur2 like Java) on the stack's broker."""
    return Producer(producer_config(handle.settings, **{"linger.ms": 20}))


def decisions_consumer(handle: StackHandle) -> Consumer:
    """A consumer of its own group, assigned to every partition of fraud_decisions from 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": handle.settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topics.FRAUD_DECISIONS, timeout=10)
    consumer.assign(
        [
            TopicPartition(topics.FRAUD_DECISIONS, p, 0)
            for p in meta.topics[topics.FRAUD_DECISIONS].partitions
        ]
    )
    return consumer


def make_tx(account_id: str, amount: str = "100.00", **changes: Any) -> Transaction:
    """The shared factory's transaction, made now at a merchant of its own; override any field."""
    values: dict[str, Any] = dict(
        account_id=account_id,
        amount=Decimal(amount),
        merchant_id=f"M-{uuid.uuid4().hex[:8]}",
        ts_ms=int(time.time() * 1000),
    )
    values.update(changes)
    return make_transaction(**values)


def make_alert(tx: Transaction, rule_id: str, weight: int) -> FraudAlert:
    """An alert as the rules job would write it (synthetic rules keep the scores exact)."""
    return FraudAlert(
        alert_id=f"{rule_id}:{tx.transaction_id}",
        rule_id=rule_id,
        severity="HIGH",
        score_weight=weight,
        transaction_id=tx.transaction_id,
        account_id=tx.account_id,
        amount=tx.amount,
        ts_ms=tx.ts_ms,
        evidence={"test": rule_id},
    )


def send(prod: Producer, topic: str, items: Sequence[Transaction | FraudAlert | bytes]) -> None:
    """Produce models (or raw bytes) keyed by account, and wait for the broker."""
    for item in items:
        if isinstance(item, bytes):
            prod.produce(topic, key=b"raw", value=item)
        elif isinstance(item, Transaction):
            prod.produce(topic, key=item.account_id, value=item.to_wire())
        else:
            prod.produce(topic, key=item.account_id, value=item.model_dump_json())
    prod.flush(30)


def reasons_codes(reasons: Any) -> list[str]:
    """The codes of a decision's stored reasons (jsonb)."""
    data = json.loads(reasons) if isinstance(reasons, str) else reasons
    return [r["code"] for r in data]


def wait_past_everything_sent(handle: StackHandle, conn: psycopg.Connection) -> None:
    """Send a marker transaction, its alert and its label to every partition of the three input
    topics, and wait until all are stored and decided.

    The service reads each partition in order, so once every marker is in, it has handled
    everything sent before them: a double that a replay would make is visible now, without
    sleeping and hoping it was long enough.
    """
    prod = producer(handle)
    tag = uuid.uuid4().hex[:8]
    ids = []
    for partition in range(handle.settings.transactions_partitions):
        tx = make_tx(f"MARK-{tag}-{partition}")
        alert = make_alert(tx, "TEST_MARKER", 40)
        label = FraudLabel(
            transaction_id=tx.transaction_id,
            account_id=tx.account_id,
            scenario="legit",
            is_fraud=False,
        )
        key = tx.account_id
        prod.produce(topics.TRANSACTIONS, key=key, value=tx.to_wire(), partition=partition)
        prod.produce(
            topics.FRAUD_ALERTS, key=key, value=alert.model_dump_json(), partition=partition
        )
        prod.produce(topics.LABELS, key=key, value=label.model_dump_json(), partition=partition)
        ids.append(tx.transaction_id)
    assert prod.flush(30) == 0
    query = (
        "SELECT (SELECT count(*) FROM transactions WHERE transaction_id = ANY(%s)),"
        " (SELECT count(*) FROM decisions WHERE transaction_id = ANY(%s)),"
        " (SELECT count(*) FROM transaction_labels WHERE transaction_id = ANY(%s))"
    )
    expected = (len(ids),) * 3
    rows = wait_for(conn, query, (ids, ids, ids), lambda rows: rows[0] == expected, 120)
    assert rows[0] == expected, f"the markers were not all handled: {rows}"
