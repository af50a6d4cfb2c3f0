"""Ledger repository: bulk writes of transactions, alerts, labels, dead letters and offsets.

Every function takes the caller's connection and runs inside the caller's transaction, so a
batch's rows and the offsets that produced them commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from streamguard.domain.models import FraudAlert, FraudLabel, Transaction, from_epoch_ms

_TX_COLUMNS = (
    "transaction_id",
    "account_id",
    "card_token",
    "card_last4",
    "amount",
    "currency",
    "channel",
    "merchant_id",
    "merchant_name",
    "merchant_mcc",
    "city",
    "state",
    "lat",
    "lon",
    "device_id",
    "ip_address",
    "event_time",
    "kafka_append_at",
)
_ALERT_COLUMNS = (
    "alert_id",
    "rule_id",
    "severity",
    "score_weight",
    "transaction_id",
    "account_id",
    "amount",
    "event_time",
    "evidence",
    "kafka_append_at",
)


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be used, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str


def _copy_upsert(
    conn: psycopg.Connection, table: str, key: str, columns: Sequence[str], rows: Iterable[tuple]
) -> int:
    """COPY rows into a temporary table, then insert the new ones; return how many were new."""
    stage = f"stage_{table}"
    cols = ", ".join(columns)
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS)"
        " ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {stage} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
        inserted = cur.rowcount
        cur.execute(f"TRUNCATE {stage}")
    return inserted


def save_transactions(
    conn: psycopg.Connection, items: Sequence[tuple[Transaction, datetime | None]]
) -> int:
    """Store transactions once each (a replay inserts nothing); return how many were new."""
    rows = (
        (
            t.transaction_id,
            t.account_id,
            t.card_token,
            t.card_last4,
            t.amount,
            t.currency,
            t.channel.value,
            t.merchant_id,
            t.merchant_name,
            t.merchant_mcc,
            t.city,
            t.state,
            t.lat,
            t.lon,
            t.device_id,
            t.ip_address,
            from_epoch_ms(t.ts_ms),
            appended,
        )
        for t, appended in items
    )
    return _copy_upsert(conn, "transactions", "transaction_id", _TX_COLUMNS, rows)


def save_alerts(
    conn: psycopg.Connection, items: Sequence[tuple[FraudAlert, datetime | None]]
) -> int:
    """Store alerts once each, deduplicated by their deterministic alert_id."""
    rows = (
        (
            a.alert_id,
            a.rule_id,
            a.severity,
            a.score_weight,
            a.transaction_id,
            a.account_id,
            a.amount,
            from_epoch_ms(a.ts_ms),
            json.dumps(a.evidence),
            appended,
        )
        for a, appended in items
    )
    return _copy_upsert(conn, "fraud_alerts", "alert_id", _ALERT_COLUMNS, rows)


def save_labels(conn: psycopg.Connection, labels: Sequence[FraudLabel]) -> int:
    """Store the generator's ground truth."""
    rows = ((lb.transaction_id, lb.account_id, lb.scenario, lb.is_fraud) for lb in labels)
    return _copy_upsert(
        conn,
        "transaction_labels",
        "transaction_id",
        ("transaction_id", "account_id", "scenario", "is_fraud"),
        rows,
    )


def save_dead_letters(conn: psycopg.Connection, letters: Sequence[DeadLetter]) -> None:
    """Keep every unusable message with its reason; a replay does not double it."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key,"
            " payload, reason) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(d.topic, d.partition, d.offset, d.key, d.payload, d.reason) for d in letters],
        )


def load_offsets(conn: psycopg.Connection, group_id: str) -> dict[tuple[str, int], int]:
    """The next offset to read for each (topic, partition) this group has stored."""
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = %s",
        (group_id,),
    )
    return {(topic, partition): offset for topic, partition, offset in rows}


def save_offsets(
    conn: psycopg.Connection, group_id: str, offsets: dict[tuple[str, int], int]
) -> None:
    """Record the next offsets, in the same transaction as the rows they produced."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (group_id, topic, partition)"
            " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = clock_timestamp()",
            [(group_id, topic, part, offset) for (topic, part), offset in offsets.items()],
        )
