"""The walking skeleton, end to end: transactions in, alerts stored in PostgreSQL, decisions out.

Two transactions are delivered twice, as an at-least-once producer may after a retry. Primary
keys make "one row per id" true whatever the code does, so the checks count what a double
delivery would really double: the merchant's counter, decision versions, history rows and the
decisions published on Kafka.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer

from streamguard.domain.models import Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from tests.factories import make_transaction, noon_before
from tests.integration.decideproc import decisions_consumer
from tests.stackfixture import StackHandle

# It starts a stack: integration too, so that `-m "not integration"` runs none.
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def make_tx(account_id: str, amount: str, ts_ms: int, merchant_id: str) -> Transaction:
    return make_transaction(
        account_id=account_id, amount=Decimal(amount), ts_ms=ts_ms, merchant_id=merchant_id
    )


def wait_for(
    query: str, params: tuple, predicate, conn: psycopg.Connection, timeout_s: float, tick=None
):
    deadline = time.monotonic() + timeout_s
    rows: list = []
    while time.monotonic() < deadline:
        rows = conn.execute(query, params).fetchall()
        conn.rollback()
        if predicate(rows):
            return rows
        if tick:
            tick()
        time.sleep(0.5)
    return rows


def test_alerts_land_in_postgres(stack: StackHandle) -> None:
    check_alerts_land_in_postgres(stack)


def check_alerts_land_in_postgres(stack: StackHandle) -> None:
    """A normal, a high and a burst of transactions in: the stateless and the windowed rule's
    alerts stored, every alerted transaction decided and published once, nothing doubled."""
    settings = stack.settings
    producer = Producer(producer_config(settings))
    run = uuid.uuid4().hex[:6]
    merchant = f"M-E2E-{run}"  # every transaction of this test, and only those, buys here
    now = int(time.time() * 1000)
    normal = make_tx(f"NORMAL-{run}", "120.50", now, merchant)
    # R$ 5,000 at noon in São Paulo: HIGH_AMOUNT, and never NIGHT_SPENDING as well, whatever
    # the hour the test runs (a stateless rule judges a late event like any other).
    high = make_tx(f"HIGH-{run}", "5000.00", noon_before(now), merchant)
    # Stamped now (a transaction more than STREAMGUARD_MAX_FUTURE_SKEW_S ahead is dead-lettered).
    burst = [make_tx(f"BURST-{run}", "35.00", now + 20 + i * 200, merchant) for i in range(5)]
    sent = [normal, high, *burst]
    for tx in [*sent, normal, high]:  # normal and high delivered twice
        producer.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
    producer.flush(30)

    # No traffic follows: the rules' heartbeats move event time on, so the window closes.
    with psycopg.connect(settings.db_url) as conn:
        ids = [tx.transaction_id for tx in (normal, high, *burst)]
        expected = {
            ("HIGH_AMOUNT", high.transaction_id),
            ("HIGH_VELOCITY", burst[3].transaction_id),
            ("HIGH_VELOCITY", burst[4].transaction_id),
        }
        alerts = wait_for(
            "SELECT rule_id, transaction_id FROM fraud_alerts WHERE transaction_id = ANY(%s)",
            (ids,),
            # Wait for every alert expected, not the first of each rule: the burst's 4th and 5th
            # transactions fire separately and may be stored in different batches.
            lambda rows: expected <= set(rows),
            conn,
            timeout_s=90,
        )
        assert set(alerts) == expected

        all_ids = [tx.transaction_id for tx in sent]
        stored = wait_for(
            "SELECT count(*) FROM transactions WHERE transaction_id = ANY(%s)",
            (all_ids,),
            lambda rows: rows[0][0] == len(all_ids),
            conn,
            timeout_s=30,
        )
        assert stored == [(len(all_ids),)], "a transaction was lost"
        check_nothing_doubled(stack, conn, merchant, len(all_ids), {tx for _, tx in expected})


def check_nothing_doubled(
    stack: StackHandle, conn: psycopg.Connection, merchant: str, sent: int, alerted: set[str]
) -> None:
    """The merchant counted each transaction once; each decision version exists, and reached
    Kafka, exactly once."""
    settled = wait_for(
        "SELECT (SELECT count(*) FROM decisions WHERE transaction_id = ANY(%s)),"
        " (SELECT count(*) FROM decision_history WHERE transaction_id = ANY(%s)"
        "  AND published_at IS NULL)",
        (list(alerted), list(alerted)),
        lambda rows: rows[0] == (len(alerted), 0),
        conn,
        timeout_s=30,
    )
    assert settled == [(len(alerted), 0)], "not every alerted transaction was decided and published"
    counters = conn.execute(
        "SELECT tx_count, flagged_count FROM merchant_stats WHERE merchant_id = %s", (merchant,)
    ).fetchall()
    (flagged,) = conn.execute(
        "SELECT count(*) FROM transactions WHERE merchant_id = %s AND is_fraud", (merchant,)
    ).fetchone()
    assert counters == [(sent, flagged)], "the merchant's counters counted a delivery twice"
    history = conn.execute(
        "SELECT transaction_id, version FROM decision_history WHERE transaction_id = ANY(%s)",
        (list(alerted),),
    ).fetchall()
    current = dict(
        conn.execute(
            "SELECT transaction_id, version FROM decisions WHERE transaction_id = ANY(%s)",
            (list(alerted),),
        ).fetchall()
    )
    conn.rollback()
    assert set(current) == alerted
    per_tx = Counter(tx_id for tx_id, _ in history)
    assert per_tx == Counter(current), "history rows do not match the decisions' versions"
    published = Counter(published_versions(stack, alerted, expected=len(history)))
    assert published == Counter(history), "fraud_decisions holds a version missing or twice"


def published_versions(
    stack: StackHandle, tx_ids: set[str], expected: int
) -> list[tuple[str, int]]:
    """(transaction_id, version) of every message on fraud_decisions about `tx_ids`."""
    consumer = decisions_consumer(stack)
    found: list[tuple[str, int]] = []
    deadline = time.monotonic() + 30
    quiet_until = None  # once all are in, read on for 3 s: one too many must show up too
    while time.monotonic() < (quiet_until or deadline):
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                decision = json.loads(message.value())
                if decision["transaction_id"] in tx_ids:
                    found.append((decision["transaction_id"], decision["version"]))
        if quiet_until is None and len(found) >= expected:
            quiet_until = time.monotonic() + 3
    consumer.close()
    return found
