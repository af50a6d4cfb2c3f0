"""After the load: read the stage timestamps, alerts, decisions and labels back from PostgreSQL.

Every stage stamps the same machine clock: the generator's event time, Kafka's LogAppendTime on
`transactions` and `fraud_alerts`, decide's stored_at and the decision's commit time. The
figures are therefore differences of clocks that agree, not estimates.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from streamguard.bench.quality import CardCharge
from streamguard.generate.defaults import CARD_TESTING


def ms(interval_sql: str) -> str:
    """SQL for an interval in milliseconds."""
    return f"(extract(epoch FROM {interval_sql}) * 1000)::float8"


#: The decisions of the transactions (d), and those first decided by another transaction's alert
#: (e: a velocity burst escalated them later; their own verdict was the APPROVED at storing).
DECISIONS_JOIN = (
    "LEFT JOIN decisions d USING (transaction_id) LEFT JOIN (SELECT transaction_id"
    " FROM decision_history WHERE version = 1 AND trigger = 'escalation') e USING (transaction_id)"
)

#: When a transaction's own decision was first committed (on its evidence: alerts, list hits);
#: NULL when it had none, or when it was first decided by a burst's escalation.
FIRST_DECIDED = "CASE WHEN e.transaction_id IS NULL THEN d.first_decided_at END"

#: When a transaction's verdict was first committed: its decision when it had evidence (alerts,
#: list hits), else the decision service's commit, which checked the lists and left it APPROVED.
DECIDED_AT = f"coalesce({FIRST_DECIDED}, t.stored_at)"

#: Stage latencies, each as (name, SQL expression in ms over t, a, d) and what it measures.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("kafka_append", ms("t.kafka_append_at - t.event_time"), "event time to Kafka append"),
    (
        "decide_store",
        ms("t.stored_at - t.kafka_append_at"),
        "Kafka append to stored row (the verdict of a transaction without evidence)",
    ),
    ("rule_alert", ms("a.first_alert_at - t.kafka_append_at"), "tx append to first alert append"),
    (
        "decision_commit",
        ms(f"{FIRST_DECIDED} - a.first_alert_at"),
        "first alert append to committed decision",
    ),
    ("total_to_alert", ms("a.first_alert_at - t.event_time"), "event time to first alert append"),
    (
        "total_to_decision",
        ms(f"{DECIDED_AT} - t.event_time"),
        "event time to committed verdict, every transaction",
    ),
    (
        "total_to_decision_alerted",
        ms(f"{FIRST_DECIDED} - t.event_time"),
        "event time to committed decision, transactions with evidence of their own",
    ),
)


@dataclass
class Collected:
    """What the database says about the transactions of one measured window."""

    latencies: dict[str, array] = field(default_factory=dict)
    rule_latencies: dict[str, array] = field(default_factory=dict)
    interesting: list[tuple[str, str]] = field(default_factory=list)
    labels: dict[str, tuple[str, bool]] = field(default_factory=dict)
    alerts: dict[str, frozenset[str]] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    card_charges: list[CardCharge] = field(default_factory=list)
    interesting_in_window: int = 0
    quiet_legit: int = 0
    transactions: int = 0
    decided: int = 0


def has_decisions(conn: psycopg.Connection) -> bool:
    """True when the decision service's table exists (issue 5's migration)."""
    row = conn.execute("SELECT to_regclass('decisions') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _alerts_cte(window: tuple[datetime, datetime]) -> tuple[str, tuple]:
    return (
        "WITH a AS (SELECT transaction_id, min(kafka_append_at) AS first_alert_at,"
        " array_agg(DISTINCT rule_id) AS rules FROM fraud_alerts"
        " WHERE event_time >= %s AND event_time < %s GROUP BY transaction_id)",
        window,
    )


def stage_latencies(
    conn: psycopg.Connection, window: tuple[datetime, datetime], decisions: bool
) -> tuple[dict[str, array], int, int]:
    """Each stage's latencies (ms) over the window's transactions; also counts and decided."""
    cte, params = _alerts_cte(window)
    stages = [s for s in STAGES if decisions or "d." not in s[1]]
    decided = f"{FIRST_DECIDED} IS NOT NULL" if decisions else "false"  # with evidence
    join = DECISIONS_JOIN if decisions else ""
    sql = (
        f"{cte} SELECT {', '.join(expr for _, expr, _ in stages)}, {decided}"
        f" FROM transactions t LEFT JOIN a USING (transaction_id) {join}"
        " WHERE t.event_time >= %s AND t.event_time < %s"
    )
    result = {name: array("d") for name, _, _ in stages}
    count = decided_count = 0
    with conn.cursor(name="bench_latencies") as cur:
        cur.itersize = 50_000
        cur.execute(sql, (*params, *window))
        for row in cur:
            count += 1
            decided_count += bool(row[-1])
            for (name, _, _), value in zip(stages, row, strict=False):
                if value is not None:
                    result[name].append(value)
    return result, count, decided_count


def rule_latencies(conn: psycopg.Connection, window: tuple[datetime, datetime]) -> dict[str, array]:
    """Per rule: its alert's append minus the transaction's append, in ms."""
    rows = conn.execute(
        f"SELECT a.rule_id, {ms('a.kafka_append_at - t.kafka_append_at')} FROM fraud_alerts a"
        " JOIN transactions t USING (transaction_id)"
        " WHERE a.event_time >= %s AND a.event_time < %s",
        window,
    )
    result: dict[str, array] = defaultdict(lambda: array("d"))
    for rule_id, value in rows:
        if value is not None:
            result[rule_id].append(value)
    return dict(result)


def outcomes_data(
    conn: psycopg.Connection,
    window: tuple[datetime, datetime],
    decisions: bool,
    since: datetime | None = None,
) -> Collected:
    """Transactions that matter for quality (fraud, alerted or decided against), and the rest's
    count: legitimate transactions nobody flagged weigh in only as a number.

    Card tests are read from `since` (the step's start) to the window's end, with their amounts,
    so that an episode cashed out in the window is judged whole (quality.judge_card_tests)."""
    since = window[0] if since is None else min(since, window[0])
    cte, params = _alerts_cte((since, window[1]))
    action = "d.action" if decisions else "NULL::text"
    join = "LEFT JOIN decisions d USING (transaction_id)" if decisions else ""
    rows = conn.execute(
        f"{cte} SELECT t.transaction_id, t.account_id, l.scenario, l.is_fraud, a.rules, {action},"
        " t.event_time >= %s, extract(epoch FROM t.event_time)::float8, t.amount"
        f" FROM transactions t LEFT JOIN a USING (transaction_id)"
        f" LEFT JOIN transaction_labels l USING (transaction_id) {join}"
        " WHERE t.event_time >= %s AND t.event_time < %s"
        " AND (t.event_time >= %s OR l.scenario = %s)"
        f" AND (l.is_fraud OR a.rules IS NOT NULL OR {action} IN ('REVIEW', 'BLOCK'))",
        (*params, window[0], since, window[1], window[0], CARD_TESTING),
    ).fetchall()
    collected = Collected()
    for tx_id, account_id, scenario, is_fraud, rules, act, inside, at_s, amount in rows:
        collected.interesting_in_window += bool(inside)
        collected.interesting.append((tx_id, account_id))
        if scenario is not None:
            collected.labels[tx_id] = (scenario, bool(is_fraud))
        if scenario == CARD_TESTING:
            collected.card_charges.append(CardCharge(tx_id, account_id, at_s, amount))
        if rules:
            collected.alerts[tx_id] = frozenset(rules)
        if act is not None:
            collected.actions[tx_id] = act
    return collected


def per_second(
    conn: psycopg.Connection, span: tuple[datetime, datetime], decisions: bool
) -> dict[str, dict[int, int]]:
    """Counts per wall-clock second: appended to Kafka, stored, alerted and decided."""
    queries = {
        "appended": "SELECT floor(extract(epoch FROM kafka_append_at)), count(*) FROM transactions"
        " WHERE kafka_append_at >= %s AND kafka_append_at < %s GROUP BY 1",
        "stored": "SELECT floor(extract(epoch FROM stored_at)), count(*) FROM transactions"
        " WHERE stored_at >= %s AND stored_at < %s GROUP BY 1",
        "alerted": "SELECT floor(extract(epoch FROM kafka_append_at)), count(*) FROM fraud_alerts"
        " WHERE kafka_append_at >= %s AND kafka_append_at < %s GROUP BY 1",
    }
    if decisions:
        queries["decided"] = (
            f"SELECT floor(extract(epoch FROM {DECIDED_AT})), count(*) FROM transactions t"
            f" {DECISIONS_JOIN}"
            f" WHERE {DECIDED_AT} >= %s AND {DECIDED_AT} < %s GROUP BY 1"
        )
        queries["decisions"] = (
            "SELECT floor(extract(epoch FROM first_decided_at)), count(*) FROM decisions"
            " WHERE first_decided_at >= %s AND first_decided_at < %s GROUP BY 1"
        )
    return {
        name: {int(second): int(n) for second, n in conn.execute(sql, span)}
        for name, sql in queries.items()
    }


def _count(conn: psycopg.Connection, sql: str, params: tuple) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def window_counts(
    conn: psycopg.Connection, window: tuple[datetime, datetime], decisions: bool
) -> dict[str, int]:
    """How many rows were stored and decided during a wall-clock window."""
    counts = {
        "stored": _count(
            conn,
            "SELECT count(*) FROM transactions WHERE stored_at >= %s AND stored_at < %s",
            window,
        )
    }
    if decisions:
        counts["decided"] = _count(
            conn,
            f"SELECT count(*) FROM transactions t {DECISIONS_JOIN}"
            f" WHERE {DECIDED_AT} >= %s AND {DECIDED_AT} < %s",
            window,
        )
        counts["decisions"] = _count(
            conn,
            "SELECT count(*) FROM decisions WHERE first_decided_at >= %s AND first_decided_at < %s",
            window,
        )
    return counts


def collect(
    conn: psycopg.Connection, window: tuple[datetime, datetime], since: datetime | None = None
) -> tuple[Collected, bool]:
    """Everything the report needs about one window's transactions (and the card tests since
    the step's start, `since`)."""
    decisions = has_decisions(conn)
    latencies, count, decided = stage_latencies(conn, window, decisions)
    collected = outcomes_data(conn, window, decisions, since)
    collected.latencies = latencies
    collected.rule_latencies = rule_latencies(conn, window)
    collected.transactions = count
    collected.decided = decided
    collected.quiet_legit = count - collected.interesting_in_window
    conn.rollback()
    return collected, decisions
