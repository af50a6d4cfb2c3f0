"""Read-side queries behind the overview's charts: counts per time bucket.

Each query ranges over an indexed time column, so it reads only the range's rows:
transactions by `event_time` (BRIN, migration 004), alerts by `stored_at` (BRIN, migration
007), decisions by `first_decided_at` (B-tree, migration 007). Buckets are `date_bin` of a
fixed width from the epoch, the same alignment as `domain/charts.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from streamguard.domain.charts import EPOCH

_QUERIES = {
    "tx": "SELECT date_bin(%s, event_time, %s) AS b, count(*) FROM transactions"
    " WHERE event_time >= %s AND event_time < %s GROUP BY b",
    "alerts": "SELECT date_bin(%s, stored_at, %s) AS b, count(*) FROM fraud_alerts"
    " WHERE stored_at >= %s AND stored_at < %s GROUP BY b",
    "flagged": "SELECT date_bin(%s, first_decided_at, %s) AS b, count(*) FROM decisions"
    " WHERE first_decided_at >= %s AND first_decided_at < %s AND action <> 'APPROVE'"
    " GROUP BY b",
}
LINES = tuple(_QUERIES)


def bucket_counts(
    conn: psycopg.Connection, line: str, width: timedelta, since: datetime, until: datetime
) -> dict[datetime, int]:
    """bucket start -> rows of `line` (tx, alerts, flagged) in [since, until)."""
    rows = conn.execute(_QUERIES[line], (width, EPOCH, since, until)).fetchall()
    return {start: int(count) for start, count in rows}
