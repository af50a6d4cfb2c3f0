"""Decisions against real Kafka and PostgreSQL: the service process decides as evidence arrives.

Alerts here are produced by the test (as the Flink job would write them) with synthetic rule ids
and weights, so that every score is exact.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer

from streamguard.domain.cases import CASE_ACTIONS
from streamguard.domain.models import Transaction
from streamguard.kafka import topics
from streamguard.store import cases
from tests.integration.decideproc import (
    decision_service,
    decisions_consumer,
    make_alert,
    make_tx,
    producer,
    reasons_codes,
    send,
    wait_for,
)
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(infra: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    log = tmp_path_factory.mktemp("decisions") / "decide.log"
    with decision_service(infra, log):
        yield infra


@pytest.fixture(scope="module")
def conn(service: StackHandle) -> Iterator[psycopg.Connection]:
    with psycopg.connect(service.settings.db_url) as connection:
        yield connection


@pytest.fixture(scope="module")
def prod(service: StackHandle) -> Producer:
    return producer(service)


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def history(conn: psycopg.Connection, tx_id: str, versions: int) -> list[tuple]:
    return wait_for(
        conn,
        "SELECT version, action, score, reasons, trigger FROM decision_history"
        " WHERE transaction_id = %s ORDER BY version",
        (tx_id,),
        lambda rows: len(rows) >= versions,
    )


def status(conn: psycopg.Connection, tx_id: str, expected: str) -> tuple:
    rows = wait_for(
        conn,
        "SELECT status, is_fraud FROM transactions WHERE transaction_id = %s",
        (tx_id,),
        lambda rows: bool(rows) and rows[0][0] == expected,
    )
    assert rows, f"transaction {tx_id} was never stored"
    return rows[0]


def test_nothing_fired_means_approved_without_a_decision(
    conn: psycopg.Connection, prod: Producer
) -> None:
    account = f"PLAIN-{run_id()}"
    tx = make_tx(account)
    send(prod, topics.TRANSACTIONS, [tx])
    assert status(conn, tx.transaction_id, "APPROVED") == ("APPROVED", False)
    # a later transaction of the same account (same partitions), decided from its alert: once
    # its decision is in, the service has handled everything sent before it
    marker = make_tx(account)
    send(prod, topics.TRANSACTIONS, [marker])
    send(prod, topics.FRAUD_ALERTS, [make_alert(marker, "TEST_FORTY", 40)])
    assert history(conn, marker.transaction_id, 1), "the marker was never decided"
    found = conn.execute(
        "SELECT count(*) FROM decisions WHERE transaction_id = %s", (tx.transaction_id,)
    ).fetchone()
    assert found == (0,)


def test_an_alert_decides_and_a_later_alert_escalates(
    conn: psycopg.Connection, prod: Producer, service: StackHandle
) -> None:
    account = f"ESC-{run_id()}"
    tx = make_tx(account)
    send(prod, topics.TRANSACTIONS, [tx])
    status(conn, tx.transaction_id, "APPROVED")
    send(prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_FORTY", 40)])
    first = history(conn, tx.transaction_id, 1)
    # a brand-new account: +40 for the rule, +5 for its thin history
    assert first[0][:3] == (1, "REVIEW", 45)
    assert reasons_codes(first[0][3]) == ["RULE:TEST_FORTY", "THIN_HISTORY"]
    assert status(conn, tx.transaction_id, "REVIEW") == ("REVIEW", True)

    send(prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_THIRTY", 30)])
    rows = history(conn, tx.transaction_id, 2)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (1, "REVIEW", 45, "alert"),
        (2, "BLOCK", 75, "alert"),
    ]
    assert status(conn, tx.transaction_id, "BLOCKED") == ("BLOCKED", True)
    current = conn.execute(
        "SELECT action, version, rule_ids FROM decisions WHERE transaction_id = %s",
        (tx.transaction_id,),
    ).fetchone()
    assert current == ("BLOCK", 2, ["TEST_FORTY", "TEST_THIRTY"])

    published = decisions_on_kafka(service, {tx.transaction_id}, expected=2)
    assert sorted((d["version"], d["action"]) for _, d in published) == [
        (1, "REVIEW"),
        (2, "BLOCK"),
    ]
    assert {key for key, _ in published} == {account}
    assert any(reason.startswith("+30 rule TEST_THIRTY") for reason in published[-1][1]["reasons"])


def test_an_alert_before_its_transaction_and_no_silent_downgrade(
    conn: psycopg.Connection, prod: Producer
) -> None:
    account = f"EARLY-{run_id()}"
    usual = [make_tx(account, ts_ms=int(time.time() * 1000) - 60_000 + i) for i in range(25)]
    send(prod, topics.TRANSACTIONS, usual)
    status(conn, usual[-1].transaction_id, "APPROVED")
    tx = make_tx(account)
    send(
        prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_FORTY", 40), make_alert(tx, "TEST_35", 35)]
    )
    first = history(conn, tx.transaction_id, 1)
    assert first[0][:3] == (1, "BLOCK", 75)
    assert conn.execute(
        "SELECT count(*) FROM transactions WHERE transaction_id = %s", (tx.transaction_id,)
    ).fetchone() == (0,)

    send(prod, topics.TRANSACTIONS, [tx])
    rows = history(conn, tx.transaction_id, 2)
    # the transaction's context (usual device, city and amount) alone says 65, REVIEW: kept BLOCK
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (1, "BLOCK", 75, "alert"),
        (2, "BLOCK", 65, "transaction"),
    ]
    assert reasons_codes(rows[1][3])[-2:] == ["FAMILIAR", "KEPT"]
    assert status(conn, tx.transaction_id, "BLOCKED") == ("BLOCKED", True)
    waiting = conn.execute(
        "SELECT count(*) FROM awaiting_transactions WHERE transaction_id = %s",
        (tx.transaction_id,),
    ).fetchone()
    assert waiting == (0,)


def test_the_queue_filters_on_the_amount_the_service_decided_on(
    conn: psycopg.Connection, prod: Producer
) -> None:
    run = run_id()
    # amounts far above every other test's, so the least-amount queue holds only these
    stored = make_tx(f"AMT-{run}", amount="987000.00")
    send(prod, topics.TRANSACTIONS, [stored])
    status(conn, stored.transaction_id, "APPROVED")
    send(prod, topics.FRAUD_ALERTS, [make_alert(stored, "TEST_FORTY", 40)])
    # decided from its alert alone: no transaction row, so only the decision knows the amount
    early = make_tx(f"AMT-EARLY-{run}", amount="987654.32")
    send(prod, topics.FRAUD_ALERTS, [make_alert(early, "TEST_FORTY", 40)])
    history(conn, stored.transaction_id, 1)
    history(conn, early.transaction_id, 1)
    amounts = dict(
        conn.execute(
            "SELECT transaction_id, amount FROM decisions WHERE transaction_id = ANY(%s)",
            ([stored.transaction_id, early.transaction_id],),
        ).fetchall()
    )
    assert amounts == {
        stored.transaction_id: Decimal("987000.00"),
        early.transaction_id: Decimal("987654.32"),
    }

    def queued(least: str) -> set[str]:
        found = set()
        for action in CASE_ACTIONS:
            filters = cases.QueueFilter(action=action, min_amount=Decimal(least))
            found |= {row.transaction_id for row in cases.queue(conn, filters, limit=200).rows}
        conn.rollback()
        return found

    assert queued("986000.00") >= {stored.transaction_id, early.transaction_id}
    assert queued("987654.00") == {early.transaction_id}
    assert queued("987654.33") == set()


def test_the_database_refuses_a_downgrade(conn: psycopg.Connection, prod: Producer) -> None:
    tx = make_tx(f"GUARD-{run_id()}")
    send(prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_NINETY", 90)])
    history(conn, tx.transaction_id, 1)
    with pytest.raises(psycopg.errors.RaiseException, match="downgrade"):
        conn.execute(
            "UPDATE decisions SET action = 'APPROVE', version = version + 1"
            " WHERE transaction_id = %s",
            (tx.transaction_id,),
        )
    conn.rollback()


def test_lists_apply_within_seconds_to_every_transaction(
    conn: psycopg.Connection, prod: Producer, service: StackHandle
) -> None:
    run = run_id()
    merchant, trusted = f"M-BAD-{run}", f"TRUSTED-{run}"
    service.cli("lists", "add", "block", "merchant", merchant, "--reason", "test ring")
    service.cli("lists", "add", "allow", "account", trusted)
    # How soon a change applies (the refresh interval) is checked on an injected clock in
    # test_lists.py; here the running service must apply it at all, to a transaction's status.
    blocked = blocked_within(conn, prod, f"LIST-{run}", merchant, 30)
    assert blocked is not None, "the block list never applied"
    [(action, reasons, hits)] = conn.execute(
        "SELECT action, reasons, list_hits FROM decisions WHERE transaction_id = %s",
        (blocked.transaction_id,),
    ).fetchall()
    assert action == "BLOCK" and hits == [f"BLOCK:MERCHANT:{merchant}"]
    assert f"LIST:BLOCK:MERCHANT:{merchant}" in reasons_codes(reasons)

    # an allow-listed account: rules alone (75) may not block it, a person reviews instead
    tx = make_tx(trusted)
    send(prod, topics.TRANSACTIONS, [tx])
    send(prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_FORTY", 40), make_alert(tx, "T35", 35)])
    rows = wait_for(
        conn,
        "SELECT action, list_hits FROM decisions WHERE transaction_id = %s"
        " AND rule_ids @> ARRAY['TEST_FORTY', 'T35']",
        (tx.transaction_id,),
        bool,
    )
    assert rows == [("REVIEW", [f"ALLOW:ACCOUNT:{trusted}"])]

    service.cli("lists", "remove", "block", "merchant", merchant)
    # a change made after the removal: once it applies, the service has reloaded past the removal
    marker = f"M-MARK-{run}"
    service.cli("lists", "add", "block", "merchant", marker)
    assert blocked_within(conn, prod, f"LIST-{run}", marker, 30) is not None, "no marker applied"
    later = make_tx(f"LIST-{run}", merchant_id=merchant)
    send(prod, topics.TRANSACTIONS, [later])
    assert status(conn, later.transaction_id, "APPROVED")[0] == "APPROVED"
    service.cli("lists", "remove", "block", "merchant", marker)


def blocked_within(
    conn: psycopg.Connection, prod: Producer, account: str, merchant: str, timeout_s: float
) -> Transaction | None:
    """Send a transaction at `merchant` every half second until one is blocked; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tx = make_tx(account, merchant_id=merchant)
        send(prod, topics.TRANSACTIONS, [tx])
        time.sleep(0.5)
        row = conn.execute(
            "SELECT status FROM transactions WHERE transaction_id = %s", (tx.transaction_id,)
        ).fetchone()
        conn.rollback()
        if row == ("BLOCKED",):
            return tx
    return None


def decisions_on_kafka(
    handle: StackHandle, tx_ids: set[str], expected: int
) -> list[tuple[str, dict]]:
    """(key, decision) of every message on fraud_decisions about these transactions."""
    consumer = decisions_consumer(handle)
    found: list[tuple[str, dict]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(found) < expected:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                decision = json.loads(message.value())
                if decision["transaction_id"] in tx_ids:
                    found.append(((message.key() or b"").decode(), decision))
    consumer.close()
    return sorted(found, key=lambda item: item[1]["version"])
