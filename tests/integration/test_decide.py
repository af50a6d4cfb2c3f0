"""The decision service on real Kafka and PostgreSQL: bad input, least privilege, README queries."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from psycopg import sql

from streamguard.domain.redaction import luhn_valid
from streamguard.kafka import topics
from streamguard.stack.postgres_server import superuser_conninfo
from tests.integration.decideproc import (
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
    log = tmp_path_factory.mktemp("decide-1") / "decide.log"
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
    # and the running service is the one that logs in as that role, on every connection
    with psycopg.connect(superuser_conninfo(handle.settings), autocommit=True) as admin:
        sessions = admin.execute(
            "SELECT usename, count(*) FROM pg_stat_activity"
            " WHERE application_name = 'streamguard-decide' GROUP BY 1"
        ).fetchall()
    assert [user for user, _ in sessions] == [handle.settings.app_pg_user], sessions


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


def luhn_pan() -> str:
    """A random 16-digit number that passes the Luhn check, as a real card number does."""
    body = "4" + "".join(random.choice("0123456789") for _ in range(14))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


def test_a_card_number_sent_anywhere_is_stored_nowhere(running: tuple[StackHandle, Path]) -> None:
    handle, _ = running
    pan = luhn_pan()
    grouped = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    account = f"PAN-{uuid.uuid4().hex[:8]}"
    in_field = make_tx(account, merchant_name=f"Loja {grouped}", device_id=pan)
    in_key = make_tx(account)
    malformed = f'{{"account": "{account}", "card_number": "{pan}", "note": "{grouped}"'.encode()
    prod = producer(handle)
    send(prod, topics.TRANSACTIONS, [in_field])
    prod.produce(topics.TRANSACTIONS, key=pan.encode(), value=in_key.to_wire())
    prod.produce(topics.TRANSACTIONS, key=pan.encode(), value=malformed)
    prod.flush(30)

    with psycopg.connect(handle.settings.db_url) as conn:
        stored = wait_for(
            conn,
            "SELECT (SELECT count(*) FROM transactions WHERE account_id = %s),"
            " (SELECT count(*) FROM dead_letters WHERE position(%s::bytea IN payload) > 0)",
            (account, account.encode()),
            lambda rows: rows[0] == (2, 1),
        )
        assert stored == [(2, 1)], "the transactions or the malformed message were not kept"
        found = tables_holding(conn, pan)
        masked = conn.execute(
            "SELECT merchant_name, device_id FROM transactions WHERE transaction_id = %s",
            (in_field.transaction_id,),
        ).fetchone()
        letter = conn.execute(
            "SELECT message_key, payload FROM dead_letters"
            " WHERE position(%s::bytea IN payload) > 0",
            (account.encode(),),
        ).fetchone()
    on_topic = [m for m in dead_letter_messages(handle) if holds(pan, *m)]
    assert found == [], f"the card number is stored in {found}"
    assert on_topic == [], "the card number is on the dead-letter topic"
    # and what was stored is the masked number, so the search above looked at the right rows
    last4 = f"{'*' * 12}{pan[-4:]}"
    assert masked == (f"Loja {last4}", last4)
    assert letter is not None and bytes(letter[0]) == last4.encode()
    assert f'"card_number": "{last4}"'.encode() in bytes(letter[1])


def holds(pan: str, *texts: bytes | str) -> bool:
    """True when the card number appears in any text, whole or grouped by spaces or dashes."""
    pattern = "[ -]?".join(pan)
    return any(
        re.search(pattern, t.decode(errors="replace") if isinstance(t, bytes) else t) for t in texts
    )


def tables_holding(conn: psycopg.Connection, pan: str) -> list[str]:
    """Every table of the schema, dumped row by row as text: those where the number appears."""
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    assert {"transactions", "dead_letters", "fraud_alerts"} <= {t for (t,) in tables}
    found = []
    for (table,) in tables:
        # a row's text shows bytea as hex: read those columns escaped too (digits stay digits)
        binary = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s AND data_type = 'bytea'",
            (table,),
        ).fetchall()
        parts = [sql.SQL("t::text")] + [
            sql.SQL("encode({}, 'escape')").format(sql.Identifier(c)) for (c,) in binary
        ]
        query = sql.SQL("SELECT {} FROM {} t").format(
            sql.SQL(", ").join(parts), sql.Identifier(table)
        )
        if any(holds(pan, *(v for v in row if v)) for row in conn.execute(query)):
            found.append(table)
    conn.rollback()
    return found


def dead_letter_messages(handle: StackHandle) -> list[tuple[bytes, ...]]:
    """(key, value, each header value) of every message on the dead-letter topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": handle.settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topics.DEAD_LETTERS, 0, 0)])
    found: list[tuple[bytes, ...]] = []
    idle = 0
    while idle < 3:
        messages = [m for m in consumer.consume(1000, 1.0) if not m.error()]
        idle = 0 if messages else idle + 1
        for m in messages:
            found.append((m.key() or b"", m.value() or b"", *(v for _, v in m.headers() or [])))
    consumer.close()
    assert found, "the dead-letter topic is empty: nothing was checked"
    return found
