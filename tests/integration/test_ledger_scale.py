"""Two decision instances in one group over 6 partitions: per-partition fencing in PostgreSQL,
exactly once across a rebalance (one instance SIGKILLed mid-feed), alerts that arrive before
their transactions decided consistently, and `streamguard up --decision-instances 2`."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamguard.kafka import topics
from streamguard.stack.process import Paths, pid_alive, stop_pidfile
from streamguard.store import ledger
from tests.integration.ledgerproc import (
    make_alert,
    make_tx,
    producer,
    start_service,
    wait_for_log,
    wait_past_everything_sent,
)
from tests.integration.test_ledger_recovery import check_exactly_once, wait_stored
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

PARTITIONS = 6
RATE = 1_500  # tx/s
SECONDS = 16
ACCOUNTS = 600
MERCHANTS = 6
GROUP = "streamguard-ledger"


@pytest.fixture(scope="module")
def six() -> Iterator[StackHandle]:
    """PostgreSQL and Kafka with 6 partitions per account-keyed topic."""
    with running_stack(
        only="postgres,kafka",
        STREAMGUARD_TRANSACTIONS_PARTITIONS=str(PARTITIONS),
        STREAMGUARD_ALERTS_PARTITIONS=str(PARTITIONS),
    ) as stack:
        yield stack


def test_a_claim_fences_the_previous_owner_and_waits_for_its_open_batch(
    six: StackHandle,
) -> None:
    group = f"fence-{uuid.uuid4().hex[:8]}"
    parts = [(topics.TRANSACTIONS, 0), (topics.FRAUD_ALERTS, 0)]
    url = six.settings.app_db_url  # the service's own role: the grants must allow all of it
    with psycopg.connect(url) as old, psycopg.connect(url) as new:
        with old.transaction():
            mine = ledger.claim_partitions(old, group, "ledger-2", parts)
        assert set(mine.values()) == {1}
        # ledger-2's batch is open and holds its partitions' rows ...
        assert ledger.lost_partitions(old, group, "ledger-2", mine) == []  # opens a transaction
        claimed: dict = {}

        def claim() -> None:
            with new.transaction():
                claimed.update(ledger.claim_partitions(new, group, "ledger-1", parts))

        claimer = threading.Thread(target=claim)
        claimer.start()
        claimer.join(1.0)
        assert claimer.is_alive(), "the claim did not wait for the open batch"
        old.commit()  # ... so the claim waits for it, then takes over
        claimer.join(10)
        assert set(claimed.values()) == {2}
        # a batch ledger-2 starts afterwards sees that it lost both partitions
        with old.transaction():
            assert ledger.lost_partitions(old, group, "ledger-2", mine) == sorted(parts)
        with new.transaction():
            assert ledger.lost_partitions(new, group, "ledger-1", claimed) == []


def test_two_instances_across_a_kill_store_everything_once(
    six: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    merchants = [f"SC-{run}-M{j}" for j in range(MERCHANTS)]
    sent_txs: list = []
    sent_alerts: list = []
    alert_first: list[str] = []
    feed_done = threading.Event()

    def feed() -> None:
        """RATE tx/s; every 10th transaction alerted, half of those with the alert sent first."""
        prod = producer(six)
        started = time.monotonic()
        try:
            for tick in range(SECONDS * 20):
                for _ in range(RATE // 20):
                    i = len(sent_txs)
                    tx = make_tx(
                        f"CR-{run}-A{i % ACCOUNTS}",
                        "120.00",
                        merchant_id=merchants[i % MERCHANTS],
                    )
                    alert = make_alert(tx, "TEST_SEVENTY", 70) if i % 10 == 0 else None
                    if alert is not None and i % 20 == 0:
                        prod.produce(
                            topics.FRAUD_ALERTS,
                            key=tx.account_id,
                            value=alert.model_dump_json(),
                        )
                        alert_first.append(tx.transaction_id)
                    prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
                    if alert is not None and i % 20 == 10:
                        prod.produce(
                            topics.FRAUD_ALERTS,
                            key=tx.account_id,
                            value=alert.model_dump_json(),
                        )
                    sent_txs.append(tx)
                    if alert is not None:
                        sent_alerts.append(alert)
                prod.poll(0)
                time.sleep(max(0.0, started + (tick + 1) / 20 - time.monotonic()))
            assert prod.flush(60) == 0
        finally:
            feed_done.set()

    logs = [tmp_path / "ledger-1.log", tmp_path / "ledger-2.log"]
    with logs[0].open("ab") as out_a, logs[1].open("ab") as out_b:
        a = start_service(six, out_a, STREAMGUARD_LEDGER_INSTANCE_ID="ledger-1")
        b = start_service(six, out_b, STREAMGUARD_LEDGER_INSTANCE_ID="ledger-2")
        try:
            # 3 topics x 6 partitions, range-assigned: 9 each, the same numbers of every topic
            wait_for_log(logs[0], "assigned 9 partitions", a, timeout_s=90)
            wait_for_log(logs[1], "assigned 9 partitions", b, timeout_s=90)
            feeder = threading.Thread(target=feed, name="feed", daemon=True)
            feeder.start()
            wait_stored(six.settings, merchants, at_least=4 * RATE)
            assert not feed_done.is_set(), "the feed ended before the kill"
            b.send_signal(signal.SIGKILL)
            b.wait(10)
            wait_for_log(logs[0], "assigned 18 partitions", a, timeout_s=60)
            feeder.join(SECONDS + 90)
            done = wait_stored(six.settings, merchants, at_least=len(sent_txs), timeout_s=180)
            assert done == len(sent_txs), f"{done} of {len(sent_txs)} stored"
            with psycopg.connect(six.settings.db_url) as conn:
                wait_past_everything_sent(six, conn)  # a replay's doubles are in
            assert a.poll() is None, f"ledger-1 exited {a.returncode}"
            check_exactly_once(six.settings, sent_txs, sent_alerts, merchants)
            check_every_alert_decided(six, run, sent_alerts, alert_first)
            with psycopg.connect(six.settings.db_url) as conn:
                owners = conn.execute(
                    "SELECT DISTINCT owner FROM partition_owners WHERE group_id = %s",
                    (GROUP,),
                ).fetchall()
            assert owners == [("ledger-1",)]
        finally:
            for process in (a, b):
                if process.poll() is None:
                    process.terminate()
                process.wait(30)


def check_every_alert_decided(
    handle: StackHandle, run: str, alerts: list, alert_first: list[str]
) -> None:
    """Each alerted transaction BLOCKED with its decision, whichever came first; none waiting."""
    alerted = [a.transaction_id for a in alerts]
    with psycopg.connect(handle.settings.db_url) as conn:
        rows = conn.execute(
            "SELECT t.transaction_id, t.status, d.action FROM transactions t"
            " LEFT JOIN decisions d USING (transaction_id) WHERE t.transaction_id = ANY(%s)",
            (alerted,),
        ).fetchall()
        waiting = conn.execute(
            "SELECT count(*) FROM awaiting_transactions WHERE transaction_id = ANY(%s)",
            (alerted,),
        ).fetchone()
        undecided = conn.execute(
            "SELECT count(*) FROM transactions t WHERE t.account_id LIKE %s"
            " AND t.status = 'APPROVED' AND EXISTS"
            " (SELECT 1 FROM decisions d WHERE d.transaction_id = t.transaction_id"
            "  AND d.action <> 'APPROVE')",
            (f"CR-{run}-%",),
        ).fetchone()
    assert len(rows) == len(alerted)
    wrong = [row for row in rows if (row[1], row[2]) != ("BLOCKED", "BLOCK")]
    first = set(alert_first)
    assert wrong == [], f"{len(wrong)} wrong, {sum(r[0] in first for r in wrong)} alert-first"
    assert waiting == (0,)
    assert undecided == (0,)


def test_up_runs_two_instances_each_with_its_id_pid_file_log_and_status_row(
    six: StackHandle,
) -> None:
    paths = Paths(six.settings.state_path)
    six.cli("up", "--only", "ledger", "--decision-instances", "2")
    try:
        rows = {r["component"]: r for r in json.loads(six.cli("status", "--json").stdout)}
        assert rows["ledger"]["state"] == rows["ledger-2"]["state"] == "running"
        assert rows["ledger"]["pid"] != rows["ledger-2"]["pid"]
        for name, instance in (("ledger", "ledger-1"), ("ledger-2", "ledger-2")):
            assert paths.pidfile(name).exists()
            wait_for_log(paths.log(name), "assigned", _Alive(rows[name]["pid"]), timeout_s=60)
            assert f"instance {instance}" in paths.log(name).read_text()
        with psycopg.connect(six.settings.db_url) as conn:
            deadline = time.monotonic() + 30
            owners: list = []
            while time.monotonic() < deadline:
                owners = conn.execute(
                    "SELECT owner, count(*) FROM partition_owners WHERE group_id = %s"
                    " GROUP BY owner ORDER BY owner",
                    (GROUP,),
                ).fetchall()
                conn.rollback()
                if owners == [("ledger-1", 9), ("ledger-2", 9)]:
                    break
                time.sleep(0.5)
        assert owners == [("ledger-1", 9), ("ledger-2", 9)]
    finally:
        pids = [stop_pidfile(paths.pidfile(name)) for name in ("ledger-2", "ledger")]
    assert all(pid is not None and not pid_alive(pid) for pid in pids)


class _Alive:
    """The part of Popen that wait_for_log needs, for a process the stack started."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return None if pid_alive(self.pid) else -1
