"""Read-side queries of the rules page: alerts per rule over time, and each rule's precision."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from streamguard.domain.charts import EPOCH


def alert_totals(conn: psycopg.Connection) -> dict[str, int]:
    """rule -> every stored alert (the rule_id index answers it)."""
    rows = conn.execute("SELECT rule_id, count(*) FROM fraud_alerts GROUP BY rule_id").fetchall()
    return {str(r): int(n) for r, n in rows}


def alerts_per_bucket(
    conn: psycopg.Connection, since: datetime, width: timedelta
) -> dict[str, dict[datetime, int]]:
    """rule -> bucket start -> alerts stored in it, from `since` (BRIN on stored_at)."""
    found: dict[str, dict[datetime, int]] = {}
    for rule, start, count in conn.execute(
        "SELECT rule_id, date_bin(%s, stored_at, %s) AS b, count(*) FROM fraud_alerts"
        " WHERE stored_at >= %s GROUP BY rule_id, b",
        (width, EPOCH, since),
    ):
        found.setdefault(str(rule), {})[start] = int(count)
    return found


def resolutions_by_rule(conn: psycopg.Connection) -> dict[str, tuple[int, int, int]]:
    """rule -> (confirmed fraud, false positive, legitimate) over resolved cases it alerted on."""
    rows = conn.execute(
        "SELECT rule, count(*) FILTER (WHERE r.resolution = 'CONFIRMED_FRAUD'),"
        " count(*) FILTER (WHERE r.resolution = 'FALSE_POSITIVE'),"
        " count(*) FILTER (WHERE r.resolution = 'LEGITIMATE')"
        " FROM case_resolutions r JOIN decisions d USING (transaction_id),"
        " unnest(d.rule_ids) AS rule GROUP BY rule"
    ).fetchall()
    return {str(rule): (int(a), int(b), int(c)) for rule, a, b, c in rows}


def labels_by_rule(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """rule -> (alerts on transactions labelled fraud, alerts on labelled transactions), from
    the generator's ground truth (`transaction_labels`); empty for real traffic."""
    rows = conn.execute(
        "SELECT a.rule_id, count(*) FILTER (WHERE l.is_fraud), count(*)"
        " FROM fraud_alerts a JOIN transaction_labels l USING (transaction_id)"
        " GROUP BY a.rule_id"
    ).fetchall()
    return {str(rule): (int(fraud), int(judged)) for rule, fraud, judged in rows}
