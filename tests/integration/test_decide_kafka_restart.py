"""A Kafka broker restart under a steady feed: the decision service rides it out in the same
process, logs the transient errors while librdkafka reconnects, and ends with every transaction
and alert stored exactly once and every alert decided, no decision version doubled.

The broker is stopped by its PID (the stack's PID file) and started again by the stack's own
code on the same port and data folder, as `streamguard down/up --only kafka` would."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from streamguard.kafka import topics
from streamguard.stack import kafka_server
from streamguard.stack.process import Paths, pid_alive, port_in_use, read_pid, stop_pidfile
from tests.integration.decideproc import (
    make_alert,
    make_tx,
    producer,
    start_service,
    wait_for_log,
)
from tests.integration.test_decide_recovery import check_recovered, wait_stored
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

RATE = 1_000  # tx/s
SECONDS = 45
ACCOUNTS = 300
MERCHANTS = 6
DOWN_S = 5  # how long the broker stays down


def restart_kafka(handle: StackHandle) -> tuple[int, int]:
    """Stop the broker by its PID, wait DOWN_S, start it again on the same port and data."""
    settings = handle.settings
    pidfile = Paths(settings.state_path).pidfile(kafka_server.NAME)
    old = stop_pidfile(pidfile)
    assert old is not None and not pid_alive(old)
    time.sleep(DOWN_S)
    deadline = time.monotonic() + 30
    while port_in_use(settings.kafka_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return old, kafka_server.start(settings)


def test_kafka_restart_under_load_loses_and_doubles_nothing(
    infra: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    merchants = [f"KR-{run}-M{j}" for j in range(MERCHANTS)]
    settings = infra.settings
    log = tmp_path / "decide.log"
    sent_txs: list = []
    sent_alerts: list = []
    feed_done = threading.Event()

    def feed() -> None:
        """RATE tx/s for SECONDS, one alert for every 20th transaction, in 50 ms slices."""
        prod = producer(infra)
        started = time.monotonic()
        try:
            for tick in range(SECONDS * 20):
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
            assert prod.flush(120) == 0  # queued while the broker was down, then delivered
        finally:
            feed_done.set()

    with log.open("ab") as out:
        service = start_service(infra, out)
        try:
            wait_for_log(log, "assigned", service)
            pid = service.pid
            feeder = threading.Thread(target=feed, name="feed", daemon=True)
            feeder.start()
            wait_stored(settings, merchants, at_least=3 * RATE)  # the service is busy writing
            assert not feed_done.is_set(), "the feed ended before Kafka was stopped"
            old_kafka, new_kafka = restart_kafka(infra)
            assert new_kafka != old_kafka
            assert read_pid(Paths(settings.state_path).pidfile(kafka_server.NAME)) == new_kafka
            assert not feed_done.is_set(), "the restart did not happen during the feed"
            assert service.poll() is None, f"the service exited {service.returncode}"
            feeder.join(SECONDS + 150)
            assert feed_done.is_set()
            check_recovered(infra, service, run, sent_txs, sent_alerts, merchants)
            assert service.pid == pid  # the same process throughout
        finally:
            if service.poll() is None:
                service.terminate()
            service.wait(30)
    text = log.read_text()
    assert "Kafka unavailable (retryable" in text, text[-3000:]
    assert "Kafka answering again after" in text, text[-3000:]
