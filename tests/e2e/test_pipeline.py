"""The walking skeleton, end to end: transactions in, alerts stored in PostgreSQL."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer

from streamguard.domain.models import Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from tests.factories import make_transaction
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.e2e


def make_tx(account_id: str, amount: str, ts_ms: int) -> Transaction:
    return make_transaction(account_id=account_id, amount=Decimal(amount), ts_ms=ts_ms)


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
    settings = stack.settings
    producer = Producer(producer_config(settings))
    run = uuid.uuid4().hex[:6]
    now = int(time.time() * 1000)
    normal = make_tx(f"NORMAL-{run}", "120.50", now)
    high = make_tx(f"HIGH-{run}", "5000.00", now + 10)
    # Stamped now (a transaction more than STREAMGUARD_MAX_FUTURE_SKEW_S ahead is dead-lettered).
    burst = [make_tx(f"BURST-{run}", "35.00", now + 20 + i * 200) for i in range(5)]
    sent = [normal, high, *burst]
    for tx in sent:
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
        by_rule: dict[str, set[str]] = {}
        for rule_id, tx_id in alerts:
            by_rule.setdefault(rule_id, set()).add(tx_id)
        assert high.transaction_id in by_rule.get("HIGH_AMOUNT", set())
        assert by_rule.get("HIGH_VELOCITY") == {burst[3].transaction_id, burst[4].transaction_id}
        assert normal.transaction_id not in {tx for txs in by_rule.values() for tx in txs}

        all_ids = [tx.transaction_id for tx in sent]
        counts = wait_for(
            "SELECT transaction_id, count(*) FROM transactions WHERE transaction_id = ANY(%s)"
            " GROUP BY 1",
            (all_ids,),
            lambda rows: len(rows) == len(all_ids),
            conn,
            timeout_s=30,
        )
        assert len(counts) == len(all_ids)
        assert all(n == 1 for _, n in counts)
