"""What a backtest reads of the past: counts, truth, list changes and listed transactions.

Every function takes the caller's connection, which the backtest opens read only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True)
class ListChange:
    """One row of `list_changes`: an entry added or removed at a moment."""

    change: str  # 'ADD' or 'REMOVE'
    list_type: str
    entity_type: str
    entity_value: str
    reason: str
    changed_at: datetime


def count_transactions(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """How many stored transactions have an event time in [start, end)."""
    row = conn.execute(
        "SELECT count(*) FROM transactions WHERE event_time >= %s AND event_time < %s",
        (start, end),
    ).fetchone()
    return int(row[0]) if row else 0


def append_span(
    conn: psycopg.Connection, start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """When Kafka appended the first and the last stored transaction of [start, end) in event
    time (None when none is stored): the span of the topic that holds the period."""
    row = conn.execute(
        "SELECT min(kafka_append_at), max(kafka_append_at) FROM transactions"
        " WHERE event_time >= %s AND event_time < %s",
        (start, end),
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None


def event_times(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, datetime]:
    """The event time of each stored transaction among `ids`."""
    rows = conn.execute(
        "SELECT transaction_id, event_time FROM transactions WHERE transaction_id = ANY(%s)",
        (sorted(set(ids)),),
    )
    return {tx: at for tx, at in rows}


def fraud_in(conn: psycopg.Connection, start: datetime, end: datetime) -> set[str]:
    """The period's transactions known to be fraud: labelled so, or confirmed by an analyst."""
    rows = conn.execute(
        "SELECT t.transaction_id FROM transactions t"
        " LEFT JOIN transaction_labels l USING (transaction_id)"
        " LEFT JOIN case_resolutions r USING (transaction_id)"
        " WHERE t.event_time >= %s AND t.event_time < %s"
        " AND COALESCE(l.is_fraud, r.resolution = 'CONFIRMED_FRAUD')",
        (start, end),
    )
    return {row[0] for row in rows}


def labels_of(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, bool]:
    """The generator's label (fraud or not) of each transaction among `ids` that has one."""
    rows = conn.execute(
        "SELECT transaction_id, is_fraud FROM transaction_labels WHERE transaction_id = ANY(%s)",
        (sorted(set(ids)),),
    )
    return {tx: is_fraud for tx, is_fraud in rows}


def resolutions_of(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The analysts' resolution of each transaction among `ids` that has one."""
    rows = conn.execute(
        "SELECT transaction_id, resolution FROM case_resolutions WHERE transaction_id = ANY(%s)",
        (sorted(set(ids)),),
    )
    return {tx: resolution for tx, resolution in rows}


def list_changes_until(conn: psycopg.Connection, end: datetime) -> list[ListChange]:
    """Every list change before `end`, oldest first (the lists' audit trail)."""
    rows = conn.execute(
        "SELECT change, list_type, entity_type, entity_value, reason, changed_at"
        " FROM list_changes WHERE changed_at < %s ORDER BY changed_at, id",
        (end,),
    )
    return [ListChange(*row) for row in rows]


def transactions_naming(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    *,
    accounts: Iterable[str],
    merchants: Iterable[str],
    devices: Iterable[str],
) -> list[str]:
    """The period's transactions whose account, merchant or device is among the given."""
    rows = conn.execute(
        "SELECT transaction_id FROM transactions WHERE event_time >= %s AND event_time < %s"
        " AND (account_id = ANY(%s) OR merchant_id = ANY(%s) OR device_id = ANY(%s))",
        (start, end, sorted(set(accounts)), sorted(set(merchants)), sorted(set(devices))),
    )
    return [row[0] for row in rows]


def merchant_counts_before(
    conn: psycopg.Connection, start: datetime, merchants: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """Each merchant's stored transactions with an event time before `start`: (all, flagged)."""
    rows = conn.execute(
        "SELECT merchant_id, count(*), count(*) FILTER (WHERE is_fraud) FROM transactions"
        " WHERE event_time < %s AND merchant_id = ANY(%s) GROUP BY merchant_id",
        (start, sorted(set(merchants))),
    )
    return {merchant: (int(total), int(flagged)) for merchant, total, flagged in rows}


def merchant_rank_in(
    conn: psycopg.Connection, start: datetime, end: datetime, ids: Iterable[str]
) -> dict[str, tuple[str, int]]:
    """For each transaction among `ids` in [start, end): its merchant and how many of that
    merchant's transactions of [start, end) came up to it, itself included (event-time order)."""
    wanted = sorted(set(ids))
    rows = conn.execute(
        "SELECT transaction_id, merchant_id, upto FROM ("
        " SELECT transaction_id, merchant_id, count(*) OVER (PARTITION BY merchant_id"
        "  ORDER BY event_time, transaction_id ROWS UNBOUNDED PRECEDING) AS upto"
        " FROM transactions WHERE event_time >= %s AND event_time < %s AND merchant_id IN ("
        "  SELECT DISTINCT merchant_id FROM transactions WHERE transaction_id = ANY(%s))"
        ") p WHERE transaction_id = ANY(%s)",
        (start, end, wanted, wanted),
    )
    return {tx: (merchant, int(upto)) for tx, merchant, upto in rows}
