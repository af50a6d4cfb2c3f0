"""A PostgreSQL restart under a steady feed: the decision service rides it out, and every
transaction and alert sent is stored exactly once (streamguard.errors labels the lost connection
retryable; the service rolls back, reconnects and resumes from the offsets in PostgreSQL)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from streamguard.kafka import topics
from streamguard.stack import postgres_server
from tests.integration.decideproc import (
    make_alert,
    make_tx,
    producer,
    start_service,
    wait_for,
    wait_for_log,
    wait_past_everything_sent,
)
from tests.integration.test_decide_crash import check_decisions
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

RATE = 1_000  # tx/s
SECONDS = 20
ACCOUNTS = 300
MERCHANTS = 6


def test_postgres_restart_under_load_loses_and_doubles_nothing(
    infra: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    merchants = [f"RS-{run}-M{j}" for j in range(MERCHANTS)]
    settings = infra.settings
    log = tmp_path / "decide.log"
    sent_txs: list = []
    sent_alerts: list = []
    feed_done = threading.Event()
    enough = threading.Event()

    def feed() -> None:
        """RATE tx/s for SECONDS at most (until `enough`), one alert for every 20th transaction,
        in 50 ms slices."""
        prod = producer(infra)
        started = time.monotonic()
        try:
            for tick in range(SECONDS * 20):
                if enough.is_set():
                    break
                for _ in range(RATE // 20):
                    i = len(sent_txs)
                    tx = make_tx(
                        f"CR-{run}-A{i % ACCOUNTS}",
                        f"{20 + i % 400}.00",
                        merchant_id=merchants[i % MERCHANTS],
                    )
                    prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
                    sent_txs.append(tx)
                    if i % 20 == 0:
                        alert = make_alert(tx, "TEST_FORTY", 40)
                        prod.produce(
                            topics.FRAUD_ALERTS, key=alert.account_id, value=alert.model_dump_json()
                        )
                        sent_alerts.append(alert)
                prod.poll(0)
                time.sleep(max(0.0, started + (tick + 1) / 20 - time.monotonic()))
            assert prod.flush(60) == 0
        finally:
            feed_done.set()

    with log.open("ab") as out:
        service = start_service(infra, out)
        try:
            wait_for_log(log, "assigned", service)
            feeder = threading.Thread(target=feed, name="feed", daemon=True)
            feeder.start()
            wait_stored(settings, merchants, at_least=3 * RATE)  # the service is busy writing
            assert not feed_done.is_set(), "the feed ended before PostgreSQL was restarted"
            old_pid = postgres_server.postmaster_pid(settings)
            new_pid = postgres_server.restart(settings)
            assert new_pid != old_pid
            assert not feed_done.is_set(), "the restart did not happen during the feed"
            time.sleep(3)  # the feed goes on a while into the restarted server
            assert not feed_done.is_set(), "the feed ended too soon after the restart"
            enough.set()
            feeder.join(SECONDS + 90)
            assert feed_done.is_set()
            # The service lived through the restart, so which acknowledgements it had
            # recorded when PostgreSQL went away is not known here: any version may have been
            # resent once (the outbox), none twice.
            check_recovered(infra, service, run, sent_txs, sent_alerts, merchants)
        finally:
            if service.poll() is None:
                service.terminate()
            service.wait(30)
    text = log.read_text()
    assert "rolling back, resuming from the offsets in PostgreSQL" in text, text[-3000:]
    assert "recovered (1 so far)" in text, text[-3000:]


def check_recovered(
    infra: StackHandle,
    service: subprocess.Popen[bytes],
    run: str,
    txs: list,
    alerts: list,
    merchants: list[str],
) -> None:
    """After a feed through an outage: every transaction stored, the service alive, each row
    once, every decision acknowledged, and every alert decided with no version sent twice."""
    settings = infra.settings
    done = wait_stored(settings, merchants, at_least=len(txs), timeout_s=180)
    assert done == len(txs), f"{done} of {len(txs)} stored"
    with psycopg.connect(settings.db_url) as conn:
        wait_past_everything_sent(infra, conn)  # a replay's doubles are in
    assert service.poll() is None, f"the service exited {service.returncode}"
    check_exactly_once(settings, txs, alerts, merchants)
    with psycopg.connect(settings.db_url) as conn:
        unpublished = wait_for(
            conn,
            "SELECT count(*) FROM decision_history WHERE published_at IS NULL"
            " AND account_id LIKE %s",
            (f"CR-{run}-%",),
            lambda rows: rows == [(0,)],
        )
        assert unpublished == [(0,)], "committed decisions never acknowledged"
        # Any version may have been resent once by the outbox after a recovery, never twice.
        resendable = set(
            conn.execute(
                "SELECT transaction_id, version FROM decision_history WHERE account_id LIKE %s",
                (f"CR-{run}-%",),
            ).fetchall()
        )
        check_decisions(conn, infra, run, {a.transaction_id for a in alerts}, resendable)


def wait_stored(settings: object, merchants: list[str], *, at_least: int, timeout_s=120) -> int:
    """Wait until the merchants' counters reach `at_least`; return the last count read.

    A fresh connection each time: this test restarts the server under it.
    """
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(settings.db_url, connect_timeout=5) as conn:  # type: ignore[attr-defined]
                (stored,) = conn.execute(
                    "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats"
                    " WHERE merchant_id = ANY(%s)",
                    (merchants,),
                ).fetchone()  # type: ignore[misc]
        except psycopg.OperationalError:
            pass  # restarting
        if stored >= at_least:
            return int(stored)
        time.sleep(0.2)
    return int(stored)


def check_exactly_once(settings: object, txs: list, alerts: list, merchants: list[str]) -> None:
    """Every transaction and alert once; the merchant counters were bumped once per row."""
    ids = [tx.transaction_id for tx in txs]
    with psycopg.connect(settings.db_url) as conn:  # type: ignore[attr-defined]
        stored = conn.execute(
            "SELECT transaction_id FROM transactions WHERE transaction_id = ANY(%s)", (ids,)
        ).fetchall()
        assert Counter(tx_id for (tx_id,) in stored) == Counter(ids)
        (counted,) = conn.execute(
            "SELECT sum(tx_count) FROM merchant_stats WHERE merchant_id = ANY(%s)", (merchants,)
        ).fetchone()  # type: ignore[misc]
        assert counted == len(txs)
        (alert_rows,) = conn.execute(
            "SELECT count(*) FROM fraud_alerts WHERE alert_id = ANY(%s)",
            ([a.alert_id for a in alerts],),
        ).fetchone()  # type: ignore[misc]
        assert alert_rows == len(alerts)


def test_a_wrong_password_ends_the_service_at_once_with_exit_2(
    infra: StackHandle, tmp_path: Path
) -> None:
    log = tmp_path / "decide.log"
    with log.open("ab") as out:
        service = start_service(infra, out, STREAMGUARD_APP_PG_PASSWORD="not-the-password")
        try:
            code = service.wait(60)  # retried, it would take STREAMGUARD_DECIDE_RETRY_FOR_S
        finally:
            if service.poll() is None:
                service.kill()
                service.wait(10)
    text = log.read_text()
    assert code == 2, text[-3000:]
    assert "fatal error, not retried" in text
    assert "28P01" in text and "password authentication failed" in text
    assert "not-the-password" not in text
