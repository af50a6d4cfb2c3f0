"""Read-side queries of the pipeline page: offsets kept in PostgreSQL and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from streamguard.domain.pipeline import TopicPartition


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as the decision service stored it (key and payload already masked)."""

    id: int
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    received_at: datetime
    key: bytes | None
    payload: bytes | None


def stored_offsets(conn: psycopg.Connection) -> dict[str, dict[TopicPartition, int]]:
    """group -> (topic, partition) -> next offset, for every group that stores its offsets
    with its rows (the decision service's exactly-once offsets; Kafka never sees them)."""
    found: dict[str, dict[TopicPartition, int]] = {}
    for group, topic, partition, offset in conn.execute(
        "SELECT group_id, topic, partition, next_offset FROM consumer_offsets"
        " ORDER BY group_id, topic, partition"
    ):
        found.setdefault(str(group), {})[(str(topic), int(partition))] = int(offset)
    return found


def dead_letter_reasons(conn: psycopg.Connection) -> list[tuple[str, int, datetime]]:
    """(reason, how many, the newest) over every stored dead letter, most frequent first."""
    rows = conn.execute(
        "SELECT reason, count(*), max(received_at) FROM dead_letters"
        " GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 50"
    ).fetchall()
    return [(str(r), int(n), at) for r, n, at in rows]


def newest_dead_letters(conn: psycopg.Connection, limit: int = 20) -> list[StoredDeadLetter]:
    """The newest stored dead letters (newest first)."""
    rows = conn.execute(
        "SELECT id, source_topic, source_partition, source_offset, reason, received_at,"
        " message_key, payload FROM dead_letters ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [
        StoredDeadLetter(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            bytes(r[6]) if r[6] is not None else None,
            bytes(r[7]) if r[7] is not None else None,
        )
        for r in rows
    ]
