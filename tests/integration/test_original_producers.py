"""The original system's producers, unchanged, against the whole pipeline (issue 16).

Their messages are `{transaction_id, account_id, amount, timestamp, merchant, category}` with a
naive ISO-8601 UTC `timestamp`, keyed by `transaction_id`. They go through Kafka, the Flink rules
job and two decision instances into PostgreSQL: stored, alerted (HIGH_AMOUNT, HIGH_VELOCITY) and
decided, and the ones without the required core are dead letters with a reason. Each
transaction is placed where its alert is not (murmur2 of its id is another partition than of its
account's), so every decision here needs ledger.take_arrived, not co-partitioning.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streamguard.domain.models import FraudAlert
from streamguard.domain.original import parse_event_ms
from streamguard.generate import clock
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

PARTITIONS = 3  # the settings' default for transactions and fraud_alerts


@pytest.fixture(scope="module")
def pipeline() -> Iterator[StackHandle]:
    """PostgreSQL, Kafka, the rules job and two decision instances in one group."""
    with running_stack(
        only="postgres,kafka,rules,decide", STREAMGUARD_DECISION_INSTANCES="2"
    ) as stack:
        yield stack


def murmur2_partition(key: str, partitions: int = PARTITIONS) -> int:
    """The partition Kafka's Java client (and Flink's sink, and murmur2_random) gives a key."""
    data, m = key.encode(), 0x5BD1E995
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    for i in range(0, len(data) - len(data) % 4, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[len(data) - len(data) % 4 :]
    if tail:
        h = ((h ^ int.from_bytes(tail, "little")) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return ((h ^ (h >> 15)) & 0x7FFFFFFF) % partitions


def away_from(account: str, stem: str) -> str:
    """A transaction id starting with `stem` whose partition is not its account's."""
    home = murmur2_partition(account)
    return next(f"{stem}-{n}" for n in range(100) if murmur2_partition(f"{stem}-{n}") != home)


def naive_utc(ms: int) -> str:
    """The original's timestamp: ISO-8601 in UTC, without saying so."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def sao_paulo(ms: int) -> str:
    """The same instant with an explicit -03:00 offset, which must be honoured."""
    moment = datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=-3)))
    return moment.isoformat(timespec="milliseconds")


def original(tx_id: str, account: str, amount: str | None, stamp: str | None, **more: Any) -> bytes:
    """One message as the original's producers write it (the amount a JSON number); a None
    amount or timestamp is left out."""
    body: dict[str, Any] = {"transaction_id": tx_id, "account_id": account}
    if stamp is not None:
        body["timestamp"] = stamp
    body |= {"merchant": "Loja do Zé", "category": "Electronics", **more}
    fields = json.dumps(body, ensure_ascii=False)
    return (fields if amount is None else f'{{"amount": {amount}, {fields[1:]}').encode()


def send(stack: StackHandle, messages: list[tuple[str, bytes]]) -> dict[str, int]:
    """Produce keyed by transaction id, as the original does; each message's partition."""
    producer = Producer(producer_config(stack.settings))
    placed: dict[str, int] = {}

    def delivered(err: object, message: Message) -> None:
        assert err is None, err
        placed[(message.key() or b"").decode()] = message.partition() or 0

    for key, value in messages:
        producer.produce(topics.TRANSACTIONS, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    return placed


def wait_rows(conn: psycopg.Connection, sql: str, params: tuple, done, timeout_s: float = 90):
    """The query's rows once `done(rows)` holds, or the last rows at the deadline."""
    deadline = time.monotonic() + timeout_s
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        rows = conn.execute(sql, params).fetchall()
        conn.rollback()
        if done(rows):
            break
        time.sleep(0.5)
    return rows


def dead_letter_reasons(stack: StackHandle, keys: set[str], timeout_s: float = 30) -> dict:
    """The `reason` header of each dead letter on the topic whose key is one of `keys`."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topics.DEAD_LETTERS, timeout=10).topics[topics.DEAD_LETTERS]
    consumer.assign([TopicPartition(topics.DEAD_LETTERS, p, 0) for p in meta.partitions])
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not keys <= found.keys():
        for message in consumer.consume(500, 0.5):
            key = (message.key() or b"").decode()
            if message.error() is None and key in keys:
                reason = dict(message.headers() or [])["reason"]
                found[key] = reason.decode() if isinstance(reason, bytes) else str(reason)
    consumer.close()
    return found


def test_the_originals_messages_are_stored_alerted_and_decided(pipeline: StackHandle) -> None:
    run = uuid.uuid4().hex[:6]
    now = int(time.time() * 1000)
    normal_acc, high_acc, pix_acc, burst_acc = (f"{k}-{run}" for k in ("N", "H", "P", "B"))
    normal = away_from(normal_acc, f"orig-n-{run}")
    high = away_from(high_acc, f"orig-h-{run}")
    pix = away_from(pix_acc, f"orig-p-{run}")
    burst = [away_from(burst_acc, f"orig-b{i}-{run}") for i in range(5)]
    stamps = {normal: naive_utc(now), high: sao_paulo(now + 10), pix: naive_utc(now + 20)}
    messages = [
        (normal, original(normal, normal_acc, "120.50", stamps[normal], category="Pet Shop")),
        (high, original(high, high_acc, "5000.00", stamps[high])),
        # A PIX producer adds what it knows: channel and the payee's key type.
        (
            pix,
            original(pix, pix_acc, "4000.00", stamps[pix], channel="PIX", payee_key_type="email"),
        ),
    ]
    for i, tx_id in enumerate(burst):
        stamps[tx_id] = naive_utc(now + 30 + i * 200)
        messages.append((tx_id, original(tx_id, burst_acc, "35.00", stamps[tx_id])))
    placed = send(pipeline, messages)
    # The helper predicts the real producer, so each transaction is away from its alerts.
    assert placed == {tx_id: murmur2_partition(tx_id) for tx_id in stamps}

    expected = {("HIGH_AMOUNT", high), ("HIGH_AMOUNT", pix)}
    expected |= {("HIGH_VELOCITY", burst[3]), ("HIGH_VELOCITY", burst[4])}
    for tx_id in (high, pix):  # R$ 4-5,000 at night in São Paulo is night spending too
        if clock.is_night(parse_event_ms(stamps[tx_id])):
            expected.add(("NIGHT_SPENDING", tx_id))
    alerted = {tx for _, tx in expected}
    with psycopg.connect(pipeline.settings.db_url) as conn:
        stored = wait_rows(
            conn,
            "SELECT transaction_id, event_time, merchant_name, merchant_mcc, currency, channel,"
            " payee_key_type, card_token, lat, city FROM transactions"
            " WHERE transaction_id = ANY(%s)",
            (list(stamps),),
            lambda rows: len(rows) == len(stamps),
        )
        by_id = {row[0]: row[1:] for row in stored}
        assert by_id.keys() == stamps.keys(), "an original message was not stored"
        for tx_id, stamp in stamps.items():
            event_time, name, mcc, currency, channel, payee, card, lat, city = by_id[tx_id]
            assert int(event_time.timestamp() * 1000) == parse_event_ms(stamp), stamp
            assert name == "Loja do Zé" and currency == "BRL"
            assert mcc == (None if tx_id == normal else "5732")  # Pet Shop is no known category
            assert (card, lat, city) == (None, None, None)  # unknown, not zero or empty
            assert (channel, payee) == (("PIX", "email") if tx_id == pix else (None, None))
        assert by_id[high][0] == datetime.fromtimestamp((now + 10) / 1000, timezone.utc)

        alerts = wait_rows(
            conn,
            "SELECT rule_id, transaction_id, evidence FROM fraud_alerts"
            " WHERE transaction_id = ANY(%s)",
            (list(stamps),),
            lambda rows: expected <= {(r, t) for r, t, _ in rows},
        )
        assert {(r, t) for r, t, _ in alerts} == expected
        evidence = {(r, t): e for r, t, e in alerts}
        assert evidence[("HIGH_AMOUNT", pix)]["payee_key_type"] == "email"
        assert "payee_key_type" not in evidence[("HIGH_AMOUNT", high)]

        decisions = wait_rows(
            conn,
            "SELECT d.transaction_id, d.action, d.rule_ids FROM decisions d"
            " WHERE d.transaction_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM decision_history h"
            "   WHERE h.transaction_id = d.transaction_id AND h.published_at IS NULL)",
            (list(alerted),),
            lambda rows: (
                {r[0] for r in rows} == alerted
                and all({r for r, t in expected if t == row[0]} <= set(row[2]) for row in rows)
            ),
        )
        assert {row[0] for row in decisions} == alerted, "an alerted transaction was not decided"
        for tx_id, _action, rule_ids in decisions:
            assert {r for r, t in expected if t == tx_id} <= set(rule_ids), (tx_id, rule_ids)
        [(awaiting,)] = conn.execute(
            "SELECT count(*) FROM awaiting_transactions WHERE transaction_id = ANY(%s)",
            (list(alerted),),
        ).fetchall()
        assert awaiting == 0, "a decision still waits for a transaction that is stored"


def test_messages_without_the_required_core_are_dead_letters_with_a_reason(
    pipeline: StackHandle,
) -> None:
    run = uuid.uuid4().hex[:6]
    stamp = naive_utc(int(time.time() * 1000))
    account = f"BAD-{run}"
    no_account = json.dumps(
        {"transaction_id": f"bad-acc-{run}", "amount": 9000, "timestamp": stamp}
    ).encode()
    bad = {
        f"bad-acc-{run}": (no_account, "schema: account_id: Field required"),
        f"bad-ts-{run}": (
            original(f"bad-ts-{run}", account, "9000.00", None),
            "schema: ts_ms: Field required (send ts_ms, epoch ms UTC, or timestamp, ISO-8601)",
        ),
        f"bad-form-{run}": (
            original(f"bad-form-{run}", account, "9000.00", "03/12/2026 12:00"),
            "schema: message: Value error, timestamp '03/12/2026 12:00' is not ISO-8601",
        ),
        f"bad-amt-{run}": (
            original(f"bad-amt-{run}", account, None, stamp),
            "schema: amount: Field required",
        ),
    }
    good = f"good-{run}"  # as large as the bad ones: its alert shows the rules have read them
    send(
        pipeline,
        [(key, value) for key, (value, _) in bad.items()]
        + [(good, original(good, account, "9000.00", stamp))],
    )
    with psycopg.connect(pipeline.settings.db_url) as conn:
        stored = wait_rows(
            conn,
            "SELECT t.transaction_id FROM transactions t JOIN fraud_alerts a"
            " USING (transaction_id) WHERE t.transaction_id = %s AND a.rule_id = 'HIGH_AMOUNT'",
            (good,),
            bool,
        )
        assert stored == [(good,)], "the good message after the bad ones was not stored, alerted"
        letters = wait_rows(
            conn,
            "SELECT convert_from(message_key, 'UTF8'), reason FROM dead_letters"
            " WHERE source_topic = %s AND convert_from(message_key, 'UTF8') = ANY(%s)",
            (topics.TRANSACTIONS, list(bad)),
            lambda rows: len(rows) == len(bad),
            timeout_s=15,
        )
        [(alerts,)] = conn.execute(
            "SELECT count(*) FROM fraud_alerts WHERE transaction_id = ANY(%s)", (list(bad),)
        ).fetchall()
    reasons = dict(letters)
    assert reasons.keys() == bad.keys()
    for key, (_, reason) in bad.items():
        assert reasons[key].startswith(reason), reasons[key]
    on_topic = dead_letter_reasons(pipeline, set(bad))
    assert on_topic == reasons, "the dead-letter topic's reason header differs from the table's"
    assert alerts == 0, "the rules alerted on a message the decision service refused"


def test_an_alert_before_its_transaction_on_another_partition_is_settled_when_it_arrives(
    pipeline: StackHandle,
) -> None:
    """The alert-first path across partitions: the decision waits, then the transaction (keyed
    by its id, away from the alert) takes it up and gets the decision's status."""
    run = uuid.uuid4().hex[:6]
    account = f"AF-{run}"
    tx_id = away_from(account, f"orig-af-{run}")
    now = int(time.time() * 1000)
    alert = FraudAlert(
        alert_id=f"HIGH_AMOUNT:{tx_id}",
        rule_id="HIGH_AMOUNT",
        severity="HIGH",
        score_weight=40,
        transaction_id=tx_id,
        account_id=account,
        amount=Decimal("5000.00"),
        ts_ms=now,
    )
    producer = Producer(producer_config(pipeline.settings))
    producer.produce(topics.FRAUD_ALERTS, key=account, value=alert.model_dump_json())
    assert producer.flush(30) == 0
    with psycopg.connect(pipeline.settings.db_url) as conn:
        waiting = wait_rows(
            conn,
            "SELECT d.action FROM decisions d JOIN awaiting_transactions a USING (transaction_id)"
            " WHERE d.transaction_id = %s",
            (tx_id,),
            bool,
            timeout_s=30,
        )
        assert waiting == [("REVIEW",)], "the alert alone was not decided, or did not wait"
        placed = send(pipeline, [(tx_id, original(tx_id, account, "5000.00", naive_utc(now)))])
        assert placed[tx_id] != murmur2_partition(account)
        settled = wait_rows(
            conn,
            "SELECT t.status, (SELECT count(*) FROM awaiting_transactions a"
            "  WHERE a.transaction_id = t.transaction_id)"
            " FROM transactions t WHERE t.transaction_id = %s",
            (tx_id,),
            lambda rows: rows == [("REVIEW", 0)],
            timeout_s=30,
        )
    assert settled == [("REVIEW", 0)], "the stored transaction never took up its decision"
