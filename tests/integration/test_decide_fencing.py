"""The decision use case (decide/batches.py) on the real PostgreSQL, with no Kafka: a stale
instance cannot commit for a partition another instance took over, and the clock is injected.

Why the other tests pass without the ownership check: a claim waits for the old owner's open
batch (its row lock), a revoke drains the queued batches and drops the polled messages of lost
partitions, and a SIGKILLed instance commits nothing. What only the check stops is a zombie: an
instance that was paused past its session timeout (GC, a network partition) and wakes up with a
batch it polled before the takeover. That is the case played here, batch by batch.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from streamguard.decide.batches import BatchStore, Record
from streamguard.decide.lists import ListCache
from streamguard.decide.parse import Batch, split
from streamguard.domain.policy import Thresholds
from streamguard.errors import FencedError
from streamguard.kafka import topics
from tests.integration.decideproc import make_alert, make_tx
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

PARTITION = (topics.TRANSACTIONS, 0)


def _store(group: str, instance: str, **kwargs: object) -> BatchStore:
    return BatchStore(
        group_id=group,
        instance_id=instance,
        lists=ListCache(60),
        thresholds=Thresholds(40, 70),
        **kwargs,  # type: ignore[arg-type]
    )


def _batch(offset: int, txs: list, merchant: str) -> Batch:
    """Transactions at consecutive offsets of partition 0 of `transactions`, without Kafka."""
    return split(
        [
            Record(topics.TRANSACTIONS, 0, offset + i, tx.to_wire(), tx.account_id.encode())
            for i, tx in enumerate(txs)
        ]
    )


def _claim(store: BatchStore, conn: psycopg.Connection) -> dict:
    with conn.transaction():
        store.claimed, offsets = store.claim(conn, [PARTITION])
    return offsets


def test_a_stale_instance_is_refused_and_nothing_is_stored_twice(infra: StackHandle) -> None:
    group = f"zombie-{uuid.uuid4().hex[:8]}"
    merchant = f"ZM-{uuid.uuid4().hex[:8]}"
    txs = [make_tx(f"ZA-{i}", "50.00", merchant_id=merchant) for i in range(4)]
    url = infra.settings.app_db_url  # the service's own role
    with psycopg.connect(url) as old_conn, psycopg.connect(url) as new_conn:
        old, new = _store(group, "decide-2"), _store(group, "decide-1")
        assert _claim(old, old_conn) == {}
        old.store_batch(old_conn, _batch(0, txs[:2], merchant))  # offsets 0-1, committed
        # decide-2 stalls; the group gives its partition to decide-1, which resumes at 2 ...
        assert _claim(new, new_conn) == {PARTITION: 2}
        new.store_batch(new_conn, _batch(2, txs[2:], merchant))
        # ... and decide-2 wakes up with the batch it had polled before (offsets 2-3)
        with pytest.raises(FencedError, match="decide-2 no longer owns transactions\\[0\\]"):
            old.store_batch(old_conn, _batch(2, txs[2:], merchant))
        # even a batch of rows nobody stored yet is refused: the partition is not its own
        late = make_tx("ZA-late", "50.00", merchant_id=merchant)
        with pytest.raises(FencedError):
            old.store_batch(old_conn, _batch(4, [late], merchant))
        rows = old_conn.execute(
            "SELECT transaction_id FROM transactions WHERE merchant_id = %s", (merchant,)
        ).fetchall()
        (counted,) = old_conn.execute(  # type: ignore[misc]
            "SELECT tx_count FROM merchant_stats WHERE merchant_id = %s", (merchant,)
        ).fetchone()
        offsets = old_conn.execute(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = %s",
            (group,),
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(tx.transaction_id for tx in txs)
    assert counted == len(txs)
    assert offsets == [(topics.TRANSACTIONS, 0, 4)]


def test_the_use_case_runs_without_kafka_on_an_injected_clock(infra: StackHandle) -> None:
    group = f"clock-{uuid.uuid4().hex[:8]}"
    tx = make_tx(f"CK-{uuid.uuid4().hex[:8]}", "75.00")
    alert = make_alert(tx, "TEST_SEVENTY", 70)
    at_ms = 1_700_000_000_123
    store = _store(group, "backtest", clock_ms=lambda: at_ms)
    records = [
        Record(topics.TRANSACTIONS, 0, 0, tx.to_wire(), tx.account_id.encode()),
        Record(topics.FRAUD_ALERTS, 0, 0, alert.model_dump_json().encode(), None, at_ms - 5),
    ]
    with psycopg.connect(infra.settings.app_db_url) as conn:
        with conn.transaction():
            store.claimed, _ = store.claim(
                conn, [(topics.TRANSACTIONS, 0), (topics.FRAUD_ALERTS, 0)]
            )
        stored = store.store_batch(conn, split(records))
        history = conn.execute(
            "SELECT action, decided_ms FROM decision_history WHERE transaction_id = %s",
            (tx.transaction_id,),
        ).fetchall()
    assert [row.transaction_id for row in stored.rows] == [tx.transaction_id]
    assert history == [("BLOCK", at_ms)]
