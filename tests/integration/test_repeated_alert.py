"""Flink's Kafka sink is at least once: after a restart it sends alerts again, with the same ids.
A repeated alert must change nothing in the ledger (ARCHITECTURE.md, rules/README.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from streamguard.kafka import topics
from tests.integration.decideproc import (
    decision_service,
    decisions_consumer,
    make_alert,
    make_tx,
    producer,
    send,
    wait_for,
)
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


def test_a_repeated_alert_changes_nothing(infra: StackHandle, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    account, merchant = f"REP-{run}", f"M-REP-{run}"
    tx = make_tx(account, merchant_id=merchant)
    alert = make_alert(tx, "TEST_FORTY", 40)
    with (
        decision_service(infra, tmp_path / "decide.log"),
        psycopg.connect(infra.settings.db_url) as conn,
    ):
        prod = producer(infra)
        send(prod, topics.TRANSACTIONS, [tx])
        stored = wait_for(
            conn,
            "SELECT count(*) FROM transactions WHERE transaction_id = %s",
            (tx.transaction_id,),
            lambda rows: rows[0][0] == 1,
        )
        assert stored == [(1,)]
        send(prod, topics.FRAUD_ALERTS, [alert])
        first = wait_for(
            conn,
            STATE,
            {"tx": tx.transaction_id, "merchant": merchant},
            lambda rows: rows[0][0] == 1,
        )
        assert first[0][:2] == (1, 1), first
        # the same alert again, in a batch of its own and within one batch, then a marker on the
        # same account: once the marker is decided, the repeats have been handled
        send(prod, topics.FRAUD_ALERTS, [alert])
        send(prod, topics.FRAUD_ALERTS, [alert, alert])
        marker = make_tx(account, merchant_id=f"M-MARK-{run}")
        send(prod, topics.TRANSACTIONS, [marker])
        send(prod, topics.FRAUD_ALERTS, [make_alert(marker, "TEST_FORTY", 40)])
        marked = wait_for(
            conn,
            "SELECT count(*) FROM decision_history"
            " WHERE transaction_id = %s AND published_at IS NOT NULL",
            (marker.transaction_id,),
            lambda rows: rows[0][0] == 1,
        )
        assert marked == [(1,)], "the marker was never decided"
        after = conn.execute(STATE, {"tx": tx.transaction_id, "merchant": merchant}).fetchall()
    # versions, history rows, stored alerts, the merchant's flagged count, the status: as before
    assert after == first
    published = decisions_of(infra, tx.transaction_id)
    assert published == [1], f"versions on fraud_decisions: {published}"


#: One transaction's footprint: versions, history rows, alerts, the merchant's counters, status.
STATE = (
    "SELECT (SELECT version FROM decisions WHERE transaction_id = %(tx)s),"
    " (SELECT count(*) FROM decision_history WHERE transaction_id = %(tx)s),"
    " (SELECT count(*) FROM fraud_alerts WHERE transaction_id = %(tx)s),"
    " (SELECT tx_count FROM merchant_stats WHERE merchant_id = %(merchant)s),"
    " (SELECT flagged_count FROM merchant_stats WHERE merchant_id = %(merchant)s),"
    " (SELECT status FROM transactions WHERE transaction_id = %(tx)s)"
)


def decisions_of(handle: StackHandle, tx_id: str) -> list[int]:
    """The versions of every fraud_decisions message about one transaction, read to the end."""
    consumer = decisions_consumer(handle)
    versions, idle = [], 0
    while idle < 3:
        messages = consumer.consume(1000, 1.0)
        idle = 0 if messages else idle + 1
        for message in messages:
            if message.error() is None:
                decision = json.loads(message.value())
                if decision["transaction_id"] == tx_id:
                    versions.append(decision["version"])
    consumer.close()
    return sorted(versions)
