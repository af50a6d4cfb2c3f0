"""The ledger against real Kafka and PostgreSQL: bad input, least privilege, README queries."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamguard.kafka import topics
from tests.integration.ledgerproc import (
    decision_service,
    make_alert,
    make_tx,
    producer,
    send,
    wait_for,
)
from tests.stackfixture import StackHandle
from tests.unit.test_decide import CORPUS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(
    infra: StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StackHandle, Path]]:
    log = tmp_path_factory.mktemp("ledger") / "ledger.log"
    with decision_service(infra, log) as process:
        yield infra, log
        assert process.poll() is None, "the service died during the tests"


def send_with_offsets(prod: Producer, topic: str, payloads: list[bytes]) -> list[tuple[int, int]]:
    """Produce raw payloads; return the (partition, offset) Kafka gave each, in order."""
    placed: dict[int, tuple[int, int]] = {}
    for index, payload in enumerate(payloads):
        prod.produce(
            topic,
            key=b"raw",
            value=payload,
            on_delivery=lambda err, msg, i=index: placed.__setitem__(
                i, (msg.partition(), msg.offset())
            ),
        )
    prod.flush(30)
    return [placed[i] for i in range(len(payloads))]


def test_malformed_messages_go_to_dead_letters_and_the_service_goes_on(
    running: tuple[StackHandle, Path],
) -> None:
    handle, _ = running
    account = f"DL-{uuid.uuid4().hex[:8]}"
    prod = producer(handle)
    before, after = make_tx(account), make_tx(account)
    send(prod, topics.TRANSACTIONS, [before])
    tx_places = send_with_offsets(prod, topics.TRANSACTIONS, [p for p, _ in CORPUS])
    bad_weight = (
        make_alert(before, "TEST", 10)
        .model_dump_json()
        .replace('"score_weight":10', '"score_weight":500')
    )
    alert_places = send_with_offsets(prod, topics.FRAUD_ALERTS, [bad_weight.encode(), b"\x00"])
    send(prod, topics.TRANSACTIONS, [after])

    expected = {
        (topics.TRANSACTIONS, *place): reason
        for place, (_, reason) in zip(tx_places, CORPUS, strict=True)
    }
    expected[(topics.FRAUD_ALERTS, *alert_places[0])] = "schema: score_weight"
    expected[(topics.FRAUD_ALERTS, *alert_places[1])] = "invalid JSON"
    with psycopg.connect(handle.settings.db_url) as conn:
        stored = wait_for(
            conn,
            "SELECT count(*) FROM transactions WHERE account_id = %s",
            (account,),
            lambda rows: rows[0][0] == 2,
        )
        assert stored == [(2,)], "the good message after the bad ones was not stored"
        rows = conn.execute(
            "SELECT source_topic, source_partition, source_offset, reason, payload"
            " FROM dead_letters"
        ).fetchall()
    letters = {(t, p, o): (reason, payload) for t, p, o, reason, payload in rows}
    for place, reason in expected.items():
        assert place in letters, f"no dead letter for {place} ({reason})"
        assert letters[place][0].startswith(reason), letters[place][0]
    for _reason, payload in letters.values():
        assert not re.search(rb"4111[ -]?1111[ -]?1111[ -]?1111", payload or b"")

    headers = dead_letter_headers(handle)
    by_place = {
        (h["source_topic"], int(h["source_partition"]), int(h["source_offset"])): h for h in headers
    }
    for place, reason in expected.items():
        assert by_place[place]["reason"].startswith(reason)


def dead_letter_headers(handle: StackHandle) -> list[dict[str, str]]:
    consumer = Consumer(
        {
            "bootstrap.servers": handle.settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topics.DEAD_LETTERS, 0, 0)])
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        messages = consumer.consume(1000, 1.0)
        found += [
            {k: v.decode() for k, v in (m.headers() or [])} for m in messages if not m.error()
        ]
        if found and not messages:
            break
    consumer.close()
    return found


def test_the_service_role_can_only_do_what_it_needs(running: tuple[StackHandle, Path]) -> None:
    handle, _ = running
    with psycopg.connect(handle.settings.app_db_url, autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == (handle.settings.app_pg_user,)
        app.execute("SELECT count(*) FROM transactions")  # allowed
        refused = [
            "DELETE FROM transactions",
            "TRUNCATE fraud_alerts",
            "UPDATE transactions SET amount = 0",
            "SELECT * FROM transaction_labels",  # ground truth: no detector reads it
            "INSERT INTO list_entries (list_type, entity_type, entity_value)"
            " VALUES ('ALLOW', 'ACCOUNT', 'me')",
            "DELETE FROM decision_history",
            "UPDATE decision_history SET action = 'APPROVE'",
            "CREATE TABLE mine (x int)",
            "DROP TABLE decisions",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
    assert handle.settings.app_pg_user != handle.settings.pg_user


def test_the_readme_queries_run_verbatim_and_agree(running: tuple[StackHandle, Path]) -> None:
    handle, _ = running
    run = uuid.uuid4().hex[:8]
    risky = f"RISKY-{run}"
    txs = [make_tx(risky, "50.00") for _ in range(3)]
    prod = producer(handle)
    send(prod, topics.TRANSACTIONS, txs)
    send(prod, topics.FRAUD_ALERTS, [make_alert(tx, "TEST_FORTY", 40) for tx in txs[:2]])
    with psycopg.connect(handle.settings.db_url) as conn:
        wait_for(
            conn,
            "SELECT count(*) FROM transactions WHERE account_id = %s AND is_fraud",
            (risky,),
            lambda rows: rows[0][0] == 2,
        )
        (total,) = conn.execute("SELECT COUNT(*) FROM transactions;").fetchone()
        (rate,) = conn.execute(
            "SELECT ROUND(100.0 * COUNT(*) FILTER (WHERE is_fraud) / NULLIF(COUNT(*), 0), 2)"
            " AS fraud_rate\nFROM transactions;"
        ).fetchone()
        suspicious = conn.execute("SELECT * FROM account_risk_profile WHERE fraud_rate > 50;")
        columns = [c.name for c in suspicious.description]
        profiles = {row[0]: dict(zip(columns, row, strict=True)) for row in suspicious}
        (flagged,) = conn.execute("SELECT count(*) FROM transactions WHERE is_fraud").fetchone()
        stats = conn.execute(
            "SELECT sum(total_transactions), sum(flagged_transactions) FROM fraud_statistics"
        ).fetchone()
        mismatched = conn.execute(
            "SELECT count(*) FROM transactions t WHERE is_fraud <> (status <> 'APPROVED')"
        ).fetchone()
    assert total >= 3
    assert float(rate) == pytest.approx(round(100 * flagged / total, 2))
    assert risky in profiles
    assert profiles[risky]["fraud_rate"] == Decimal("66.67")
    assert profiles[risky]["total_transactions"] == 3
    assert profiles[risky]["alert_count"] == 2
    assert all(p["fraud_rate"] > 50 for p in profiles.values())
    assert stats == (total, flagged)
    assert mismatched == (0,)


def test_no_card_number_is_stored_in_clear(running: tuple[StackHandle, Path]) -> None:
    handle, _ = running
    with psycopg.connect(handle.settings.db_url) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'transactions'"
        ).fetchall()
        long_digits = conn.execute(
            "SELECT count(*) FROM transactions WHERE card_token ~ '\\d{13,19}'"
            " OR merchant_name ~ '\\d{13,19}'"
        ).fetchone()
    names = {name for (name,) in columns}
    assert {"card_token", "card_last4"} <= names
    assert not {"card_number", "pan", "card"} & names
    assert long_digits == (0,)
