"""Exactly once: SIGKILL the decision service in the middle of a batch, restart it, and check
that no transaction, alert, label, dead letter or decision was lost or duplicated.

Primary keys keep one row per id whatever the service does, so "duplicated" is checked where a
replay would really double something: the per-merchant counters, the decision versions and
history rows, and the decisions on Kafka per (transaction, version)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from streamguard.config import Settings
from streamguard.domain.models import FraudLabel
from streamguard.kafka import topics
from streamguard.stack.postgres_server import superuser_conninfo
from tests.integration.decideproc import (
    decisions_consumer,
    make_alert,
    make_tx,
    producer,
    start_service,
    wait_for,
    wait_for_log,
    wait_past_everything_sent,
)
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

TRANSACTIONS = 40_000
ACCOUNTS = 400
MERCHANTS = 8


def test_sigkill_mid_batch_loses_and_duplicates_nothing(infra: StackHandle, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    merchants = [f"CR-{run}-M{j}" for j in range(MERCHANTS)]
    txs = [
        make_tx(f"CR-{run}-A{i % ACCOUNTS}", f"{20 + i % 500}.00", merchant_id=merchants[i % 8])
        for i in range(TRANSACTIONS)
    ]
    alerts = [make_alert(tx, "TEST_FORTY", 40) for tx in txs[::25]]
    alerts += [make_alert(tx, "TEST_THIRTY", 30) for tx in txs[::100]]
    early, late = alerts[: len(alerts) // 2], alerts[len(alerts) // 2 :]
    labels = [
        FraudLabel(
            transaction_id=tx.transaction_id,
            account_id=tx.account_id,
            scenario="legit",
            is_fraud=False,
        )
        for tx in txs[:5000]
    ]
    bad = [b"{broken", b'{"transaction_id": 1}', b"[]"] * 5

    # The backlog: half the alerts before their transactions, half after, malformed ones mixed in.
    prod = producer(infra)
    for alert in early:
        prod.produce(topics.FRAUD_ALERTS, key=alert.account_id, value=alert.model_dump_json())
    for index, tx in enumerate(txs):
        prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
        if index % 2500 == 0:
            prod.produce(topics.TRANSACTIONS, key=b"bad", value=bad[(index // 2500) % len(bad)])
        if index % 1000 == 0:
            prod.poll(0)
    for alert in late:
        prod.produce(topics.FRAUD_ALERTS, key=alert.account_id, value=alert.model_dump_json())
    # labels one per message (a producer's own), then in batches (the generator's)
    for label in labels[:2500]:
        prod.produce(topics.LABELS, key=label.account_id, value=label.model_dump_json())
    for start in range(2500, len(labels), 250):
        batch = ",".join(label.model_dump_json() for label in labels[start : start + 250])
        prod.produce(topics.LABELS, value=f"[{batch}]")
    # a batch with one bad label is dead-lettered whole, as is an empty one
    kept_out = labels[0].model_copy(update={"transaction_id": f"CR-{run}-kept-out"})
    for bad_batch in (f'[{kept_out.model_dump_json()},{{"transaction_id": 1}}]', "[]"):
        prod.produce(topics.LABELS, key=b"bad", value=bad_batch)
    prod.flush(60)
    bad_sent = len(range(0, TRANSACTIONS, 2500)) + 2

    settings = infra.settings
    log = tmp_path / "decide.log"
    with psycopg.connect(settings.db_url) as conn, log.open("ab") as out:
        first = start_service(infra, out)
        try:
            killed_at = kill_mid_batch(first, settings, merchants, conn)
        finally:
            if first.poll() is None:
                first.kill()
            first.wait(10)
        print(f"SIGKILL with {killed_at} of {TRANSACTIONS} transactions committed")
        assert 0 < killed_at < TRANSACTIONS, f"not killed mid-way ({killed_at} stored)"
        # the outbox may produce these again after the restart (publisher.py); no other version
        unmarked = conn.execute(
            "SELECT transaction_id, version FROM decision_history"
            " WHERE account_id LIKE %s AND published_at IS NULL",
            (f"CR-{run}-%",),
        ).fetchall()
        conn.rollback()

        second = start_service(infra, out)
        try:
            wait_for_log(log, "resuming from the offsets", second)
            done = wait_for(
                conn,
                "SELECT (SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats"
                "        WHERE merchant_id = ANY(%s)),"
                " (SELECT count(*) FROM fraud_alerts WHERE alert_id = ANY(%s)),"
                " (SELECT count(*) FROM decision_history h WHERE h.published_at IS NULL)",
                (merchants, [a.alert_id for a in alerts]),
                lambda rows: rows[0] == (TRANSACTIONS, len(alerts), 0),
                timeout_s=180,
            )
            assert done == [(TRANSACTIONS, len(alerts), 0)], done
            wait_past_everything_sent(infra, conn)  # anything doubled is in by now
            check_ledger(conn, run, txs, alerts, labels, merchants, bad_sent)
            check_decisions(conn, infra, run, {a.transaction_id for a in alerts}, set(unmarked))
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    text = log.read_text()
    assert "resuming from the offsets" in text


def kill_mid_batch(
    process: subprocess.Popen[bytes],
    settings: Settings,
    merchants: list[str],
    conn: psycopg.Connection,
) -> int:
    """SIGKILL the service inside a batch; return the count committed before it.

    Once a batch has committed, the test locks the merchants' counter rows. The next batch then
    waits on them inside its transaction, its rows copied and nothing committed, and is killed
    there. Psycopg sends one statement at a time, so its COMMIT was never sent.
    """
    deadline = time.monotonic() + 120
    admin = superuser_conninfo(settings)
    with (
        psycopg.connect(settings.db_url) as locker,
        psycopg.connect(admin, autocommit=True) as watch,
    ):
        while (stored := committed_count(conn, merchants)) == 0:
            assert process.poll() is None, "the service exited by itself"
            assert time.monotonic() < deadline, "no batch committed"
            time.sleep(0.01)
        assert stored < TRANSACTIONS, "the whole backlog committed before the lock"
        locker.execute(
            "SELECT 1 FROM merchant_stats WHERE merchant_id = ANY(%s) FOR UPDATE", (merchants,)
        )
        blocked: list[tuple[int]] = []
        while not blocked:
            assert process.poll() is None, "the service exited by itself"
            assert time.monotonic() < deadline, "no batch waited on the lock"
            time.sleep(0.01)
            blocked = watch.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'streamguard-decide'"
                " AND %s = ANY(pg_blocking_pids(pid))",
                (locker.info.backend_pid,),
            ).fetchall()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        locker.rollback()
        # the killed batch's backend goes on, finds its client gone and rolls back
        pids = [pid for (pid,) in blocked]
        while watch.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone():
            assert time.monotonic() < deadline, "the killed batch's backend stayed"
            time.sleep(0.01)
    return committed_count(conn, merchants)


def committed_count(conn: psycopg.Connection, merchants: list[str]) -> int:
    (committed,) = conn.execute(
        "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats WHERE merchant_id = ANY(%s)",
        (merchants,),
    ).fetchone()
    conn.rollback()
    return int(committed)


def check_ledger(
    conn: psycopg.Connection,
    run: str,
    txs: list,
    alerts: list,
    labels: list,
    merchants: list[str],
    bad_sent: int,
) -> None:
    ids = [tx.transaction_id for tx in txs]
    (stored,) = conn.execute(
        "SELECT count(*) FROM transactions WHERE transaction_id = ANY(%s)", (ids,)
    ).fetchone()
    assert stored == len(ids)  # none lost (the primary key keeps a replayed one out)
    # what a replayed batch would double: each merchant's counters
    counted = conn.execute(
        "SELECT merchant_id, tx_count, flagged_count FROM merchant_stats"
        " WHERE merchant_id = ANY(%s)",
        (merchants,),
    ).fetchall()
    flagged = dict(
        conn.execute(
            "SELECT merchant_id, count(*) FILTER (WHERE is_fraud) FROM transactions"
            " WHERE transaction_id = ANY(%s) GROUP BY 1",
            (ids,),
        ).fetchall()
    )
    sent = Counter(tx.merchant_id for tx in txs)
    assert {m: (n, f) for m, n, f in counted} == {m: (sent[m], flagged[m]) for m in merchants}
    (alert_rows,) = conn.execute(
        "SELECT count(*) FROM fraud_alerts WHERE alert_id = ANY(%s)",
        ([a.alert_id for a in alerts],),
    ).fetchone()
    assert alert_rows == len(alerts)  # none lost
    # the labels table is write-only for the service; the owner checks it
    (label_count,) = conn.execute(
        "SELECT count(*) FROM transaction_labels WHERE transaction_id = ANY(%s)",
        ([lb.transaction_id for lb in labels] + [f"CR-{run}-kept-out"],),
    ).fetchone()
    assert label_count == len(labels)  # every label, and none of a dead-lettered batch
    (dead,) = conn.execute(
        "SELECT count(*) FROM dead_letters WHERE message_key = 'bad'::bytea"
        " AND received_at > now() - interval '10 minutes'"
    ).fetchone()
    assert dead == bad_sent
    conn.rollback()


def check_decisions(
    conn: psycopg.Connection,
    handle: StackHandle,
    run: str,
    alerted: set[str],
    unmarked: set[tuple[str, int]],
) -> None:
    current = conn.execute(
        "SELECT d.transaction_id, d.version, d.action, t.status FROM decisions d"
        " JOIN transactions t USING (transaction_id) WHERE d.account_id LIKE %s",
        (f"CR-{run}-%",),
    ).fetchall()
    assert {row[0] for row in current} == alerted  # every alerted transaction, and only those
    status = {"APPROVE": "APPROVED", "REVIEW": "REVIEW", "BLOCK": "BLOCKED"}
    assert all(status[action] == tx_status for _, _, action, tx_status in current)
    history = conn.execute(
        "SELECT transaction_id, version, action, score, reasons::text FROM decision_history"
        " WHERE account_id LIKE %s ORDER BY transaction_id, version",
        (f"CR-{run}-%",),
    ).fetchall()
    versions: dict[str, list[tuple]] = {}
    for tx_id, version, action, score, reasons in history:
        versions.setdefault(tx_id, []).append((version, action, score, reasons))
    latest = {tx_id: version for tx_id, version, _, _ in current}
    rank = {"APPROVE": 0, "REVIEW": 1, "BLOCK": 2}
    for tx_id, rows in versions.items():
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # no gap, no double
        assert rows[-1][0] == latest[tx_id]
        for earlier, later in zip(rows, rows[1:], strict=False):
            assert earlier[1:] != later[1:], f"{tx_id}: a replay recorded the same decision twice"
            assert rank[later[1]] >= rank[earlier[1]], f"{tx_id}: downgraded"
    on_kafka = Counter(published_versions(handle, set(versions)))
    recorded = {(tx_id, r[0]) for tx_id, rows in versions.items() for r in rows}
    assert recorded <= set(on_kafka), "a committed decision never reached fraud_decisions"
    assert set(on_kafka) <= recorded, "fraud_decisions holds a version PostgreSQL does not"
    # at most one resend, and only of what Kafka had not acknowledged when the service died
    twice = {version: n for version, n in on_kafka.items() if n > 1}
    extra = sorted(set(twice) - unmarked)
    assert not extra, f"{len(extra)} versions published twice though acknowledged: {extra[:5]}"
    assert all(n == 2 for n in twice.values()), twice


def published_versions(handle: StackHandle, tx_ids: set[str]) -> list[tuple[str, int]]:
    consumer = decisions_consumer(handle)
    found, idle = [], 0
    while idle < 3:
        messages = consumer.consume(10_000, 1.0)
        idle = 0 if messages else idle + 1
        for message in messages:
            if message.error() is None:
                decision = json.loads(message.value())
                if decision["transaction_id"] in tx_ids:
                    found.append((decision["transaction_id"], decision["version"]))
    consumer.close()
    return found
