"""Read-side queries behind `/metrics`: counts that indexes answer, and new decision versions."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

#: The most decision_history rows one read returns (the scrape reads pages until it is done).
VERSIONS_PAGE = 20_000


@dataclass(frozen=True)
class Counts:
    """Totals read at one scrape; `transactions_inserted` is None when PostgreSQL is down."""

    transactions_inserted: int | None
    alerts_by_rule: dict[str, int]
    decisions_by_action: dict[str, int]


def counts(conn: psycopg.Connection) -> Counts:
    """The ledger's insert counter, alerts by rule and decisions by action."""
    inserted = conn.execute(
        "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'transactions'"
    ).fetchone()
    alerts: dict[str, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            "SELECT rule_id, count(*) FROM fraud_alerts GROUP BY rule_id"
        )
    )
    actions: dict[str, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            "SELECT action, count(*) FROM decisions GROUP BY action"
        )
    )
    return Counts(
        int(inserted[0]) if inserted else 0,
        {str(k): int(v) for k, v in alerts.items()},
        {str(k): int(v) for k, v in actions.items()},
    )


def newest_version_id(conn: psycopg.Connection) -> int:
    """The id of the newest decision version (0 when there is none)."""
    row = conn.execute("SELECT COALESCE(max(id), 0) FROM decision_history").fetchone()
    return int(row[0]) if row else 0


def versions_after(conn: psycopg.Connection, after_id: int) -> list[tuple[int, str, float | None]]:
    """(id, action, seconds from the trigger's Kafka append to the commit) of newer versions."""
    rows = conn.execute(
        "SELECT id, action, EXTRACT(epoch FROM decided_at - trigger_append_at)::float8"
        " FROM decision_history WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, VERSIONS_PAGE),
    ).fetchall()
    return [(int(i), str(a), float(s) if s is not None else None) for i, a, s in rows]
