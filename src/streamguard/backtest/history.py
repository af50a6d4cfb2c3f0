"""Where a backtest reads its history: the `transactions` topic, or the ledger when the topic
no longer holds the span.

The topic is read between two append times. Retention deletes a partition's oldest records, so
the topic holds a span when no partition has lost a record appended at or after its start. The
ledger keeps every stored transaction with its Kafka append time, so it can stand in for the
topic: its rows of the span are written, in append order, to a JSON-lines file that the rules
read with the topic's event time, bounds and watermark (`Source.ledger_file`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from streamguard.config import Settings
from streamguard.kafka import topics

TOPIC, LEDGER, AUTO = "topic", "ledger", "auto"
CHOICES = (AUTO, TOPIC, LEDGER)

#: The one SQL expression of each column that is not stored under its wire name.
_STORED_AS = {"ts_ms": "(extract(epoch FROM event_time) * 1000)::bigint"}


@dataclass(frozen=True)
class Retained:
    """One partition: its first and next offsets, and its first offset appended at or after
    the span's start (-1 when it has none)."""

    low: int
    high: int
    from_start: int


def holds(partitions: Sequence[Retained]) -> bool:
    """Whether every partition still has all its records appended since the span's start.

    A partition that never lost a record (`low` 0) holds it. One that did holds it when a
    retained record precedes the start (the first at or after it is past `low`), or when all it
    retains precede the start (nothing at or after it, and records left). An empty partition
    that lost records may have lost some of the span, and so does one whose first retained
    record is the first of the span: the records before it may have had the same time.
    """
    for part in partitions:
        if part.low == 0:
            continue
        if part.from_start > part.low:
            continue
        if part.from_start < 0 and part.high > part.low:
            continue
        return False
    return True


def topic_holds(settings: Settings, start_ms: int, timeout_s: float = 10.0) -> bool:
    """Whether the `transactions` topic still holds every record appended since `start_ms`."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"streamguard-backtest-probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topics.TRANSACTIONS, timeout=timeout_s)
        numbers = sorted(metadata.topics[topics.TRANSACTIONS].partitions)
        wanted = [TopicPartition(topics.TRANSACTIONS, p, start_ms) for p in numbers]
        found = {
            tp.partition: tp.offset for tp in consumer.offsets_for_times(wanted, timeout=timeout_s)
        }
        retained = []
        for p in numbers:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topics.TRANSACTIONS, p), timeout=timeout_s, cached=False
            )
            retained.append(Retained(low, high, found[p]))
    finally:
        consumer.close()
    return holds(retained)


def export_ledger(
    conn: psycopg.Connection,
    first: datetime,
    last: datetime,
    columns: Iterable[str],
    path: Path,
) -> int:
    """Write the stored transactions appended in [first, last] as JSON lines, in append order,
    with `columns` (wire names) and `append_ms`; how many were written."""
    fields: list[sql.Composable] = [
        sql.SQL("{}, {}").format(
            sql.Literal(name),
            sql.SQL(_STORED_AS[name]) if name in _STORED_AS else sql.Identifier(name),
        )
        for name in columns
    ]
    fields.append(sql.SQL("'append_ms', (extract(epoch FROM kafka_append_at) * 1000)::bigint"))
    # CSV with a quote and a delimiter that JSON never holds unescaped: the lines come out raw.
    query = sql.SQL(
        "COPY (SELECT json_build_object({fields}) FROM transactions"
        " WHERE kafka_append_at >= %s AND kafka_append_at <= %s"
        " ORDER BY kafka_append_at, transaction_id)"
        " TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    ).format(fields=sql.SQL(", ").join(fields))
    written = 0
    with path.open("wb") as out, conn.cursor() as cur, cur.copy(query, (first, last)) as copy:
        for data in copy:
            out.write(data)
            written += bytes(data).count(b"\n")
    return written
