"""Read-side queries of the console: decision search, one decision's file, the overview.

Every function takes the caller's connection and returns plain values. Filters are composed
from fixed SQL fragments, each with its own parameters, so every plan sees real values and the
indexes of migration 007 serve them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

MAX_PAGE = 200


@dataclass(frozen=True)
class DecisionFilter:
    """What an analyst searches by; every field is optional."""

    transaction_id: str | None = None
    account_id: str | None = None
    rule_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class DecisionRow:
    """One line of the decision search."""

    transaction_id: str
    account_id: str
    action: str
    score: int
    rule_ids: list[str]
    list_hits: list[str]
    version: int
    first_decided_at: datetime
    decided_at: datetime
    amount: Decimal | None
    merchant_name: str | None
    event_time: datetime | None


@dataclass(frozen=True)
class Page:
    """A page of rows and whether another follows."""

    rows: list[Any]
    has_more: bool


_SEARCH = """
SELECT d.transaction_id, d.account_id, d.action, d.score, d.rule_ids, d.list_hits, d.version,
       d.first_decided_at, d.decided_at, t.amount, t.merchant_name, t.event_time
FROM decisions d LEFT JOIN transactions t USING (transaction_id)
WHERE {where}
ORDER BY d.first_decided_at DESC, d.transaction_id DESC
LIMIT {limit}
"""


def search_decisions(
    conn: psycopg.Connection,
    filters: DecisionFilter,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Page:
    """Decisions matching every given filter, newest first, after the keyset `after`."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[object] = []
    for value, fragment in (
        (filters.transaction_id, "d.transaction_id = %s"),
        (filters.account_id, "d.account_id = %s"),
        (filters.rule_id, "d.rule_ids @> ARRAY[%s::text]"),
        (filters.action, "d.action = %s"),
        (filters.since, "d.first_decided_at >= %s"),
        (filters.until, "d.first_decided_at < %s"),
    ):
        if value is not None:
            conditions.append(sql.SQL(fragment))
            params.append(value)
    if after is not None:
        conditions.append(sql.SQL("(d.first_decided_at, d.transaction_id) < (%s, %s)"))
        params.extend(after)
    size = max(1, min(limit, MAX_PAGE))
    query = sql.SQL(_SEARCH).format(
        where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(size + 1)
    )
    rows = [DecisionRow(*row) for row in conn.execute(query, params)]
    return Page(rows[:size], len(rows) > size)


@dataclass(frozen=True)
class Reason:
    """One weighted reason of a decision version."""

    code: str
    weight: int
    text: str


@dataclass(frozen=True)
class Version:
    """One version of a decision: the audit trail."""

    version: int
    action: str
    score: int
    reasons: list[Reason]
    rule_ids: list[str]
    list_hits: list[str]
    trigger: str
    decided_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class Alert:
    """A rule's alert with its evidence."""

    alert_id: str
    rule_id: str
    severity: str
    score_weight: int
    event_time: datetime
    evidence: dict[str, str]


@dataclass(frozen=True)
class TransactionView:
    """A stored transaction as an analyst reads it (the card only by its last four digits).

    Only the required core is always there; None is a field the producer did not send."""

    transaction_id: str
    account_id: str
    card_last4: str | None
    amount: Decimal
    currency: str | None
    channel: str | None
    merchant_id: str | None
    merchant_name: str | None
    merchant_mcc: str | None
    payee_key_type: str | None
    city: str | None
    state: str | None
    device_id: str | None
    ip_address: str | None
    event_time: datetime
    status: str


@dataclass(frozen=True)
class ListMatch:
    """A list entry about this transaction's account, merchant or device, as it stands now."""

    list_type: str
    entity_type: str
    entity_value: str
    reason: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class DecisionFile:
    """Everything the decision page shows."""

    transaction_id: str
    transaction: TransactionView | None
    decision: DecisionRow | None
    reasons: list[Reason]
    alerts: list[Alert]
    history: list[Version]
    recent: list[TransactionView]
    list_matches: list[ListMatch]
    case: object | None = field(default=None)  # the queue's CaseRow when this is a case


_TX_COLUMNS = (
    "transaction_id, account_id, card_last4, amount, currency, channel, merchant_id,"
    " merchant_name, merchant_mcc, payee_key_type, city, state, device_id, ip_address,"
    " event_time, status"
)
RECENT_LIMIT = 20


def _reasons(raw: object) -> list[Reason]:
    return [Reason(str(r["code"]), int(r["weight"]), str(r["text"])) for r in raw or []]  # type: ignore[attr-defined]


def decision_file(conn: psycopg.Connection, transaction_id: str) -> DecisionFile | None:
    """The transaction, its decision, reasons, alerts, history, account's recent past, lists."""
    tx_row = conn.execute(
        f"SELECT {_TX_COLUMNS} FROM transactions WHERE transaction_id = %s", (transaction_id,)
    ).fetchone()
    transaction = TransactionView(*tx_row) if tx_row else None
    found = search_decisions(conn, DecisionFilter(transaction_id=transaction_id), limit=1).rows
    decision: DecisionRow | None = found[0] if found else None
    if transaction is None and decision is None:
        return None
    reasons_row = conn.execute(
        "SELECT reasons FROM decisions WHERE transaction_id = %s", (transaction_id,)
    ).fetchone()
    alerts = [
        Alert(r[0], r[1], r[2], r[3], r[4], {str(k): str(v) for k, v in (r[5] or {}).items()})
        for r in conn.execute(
            "SELECT alert_id, rule_id, severity, score_weight, event_time, evidence"
            " FROM fraud_alerts WHERE transaction_id = %s ORDER BY rule_id",
            (transaction_id,),
        )
    ]
    history = [
        Version(r[0], r[1], r[2], _reasons(r[3]), list(r[4]), list(r[5]), r[6], r[7], r[8])
        for r in conn.execute(
            "SELECT version, action, score, reasons, rule_ids, list_hits, trigger, decided_at,"
            " published_at FROM decision_history WHERE transaction_id = %s ORDER BY version",
            (transaction_id,),
        )
    ]
    account = transaction.account_id if transaction else decision.account_id  # type: ignore[union-attr]
    recent = [
        TransactionView(*r)
        for r in conn.execute(
            f"SELECT {_TX_COLUMNS} FROM transactions WHERE account_id = %s"
            " ORDER BY event_time DESC LIMIT %s",
            (account, RECENT_LIMIT),
        )
    ]
    return DecisionFile(
        transaction_id=transaction_id,
        transaction=transaction,
        decision=decision,
        reasons=_reasons(reasons_row[0]) if reasons_row else [],
        alerts=alerts,
        history=history,
        recent=recent,
        list_matches=list_matches(conn, account, transaction),
    )


def list_matches(
    conn: psycopg.Connection, account_id: str, transaction: TransactionView | None
) -> list[ListMatch]:
    """Entries now on a list for the account, and the merchant and device when known."""
    keys = [("ACCOUNT", account_id)]
    if transaction is not None:
        known = [("MERCHANT", transaction.merchant_id), ("DEVICE", transaction.device_id)]
        keys += [(kind, value) for kind, value in known if value is not None]
    kinds, values = zip(*keys, strict=True)
    rows = conn.execute(
        "SELECT e.list_type, e.entity_type, e.entity_value, e.reason, e.added_by, e.added_at"
        " FROM list_entries e JOIN unnest(%s::text[], %s::text[]) AS k(kind, value)"
        " ON e.entity_type = k.kind AND e.entity_value = k.value"
        " ORDER BY e.list_type, e.entity_type",
        (list(kinds), list(values)),
    )
    return [ListMatch(*row) for row in rows]


@dataclass(frozen=True)
class Snapshot:
    """What the overview shows at one moment, read once for every open browser."""

    inserted_transactions: int
    inserted_alerts: int
    alerts_by_rule_1m: dict[str, int]
    decisions_by_action_15m: dict[str, int]
    flagged_1m: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    open_cases: int
    newest_alerts: list[dict[str, str]]


def overview_snapshot(conn: psycopg.Connection) -> Snapshot:
    """Cheap counts: table insert counters, a minute of alerts, 15 min of decisions, the
    latency of the newest 1,000 decision versions, the open REVIEW cases and the newest alerts."""
    counters: dict[str, int] = dict(
        conn.execute(
            "SELECT relname, n_tup_ins FROM pg_stat_user_tables"
            " WHERE relname IN ('transactions', 'fraud_alerts')"
        ).fetchall()
    )
    by_rule: dict[str, int] = dict(
        conn.execute(
            "SELECT rule_id, COUNT(*) FROM fraud_alerts"
            " WHERE stored_at > now() - interval '1 minute' GROUP BY rule_id ORDER BY rule_id"
        ).fetchall()
    )
    by_action: dict[str, int] = {}
    flagged_1m = 0
    for action, count, last_minute in conn.execute(
        "SELECT action, COUNT(*), COUNT(*) FILTER (WHERE first_decided_at > now() - interval"
        " '1 minute') FROM decisions WHERE first_decided_at > now() - interval '15 minutes'"
        " GROUP BY action ORDER BY action"
    ):
        by_action[str(action)] = int(count)
        flagged_1m += int(last_minute) if action != "APPROVE" else 0
    latency = conn.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM ("
        " SELECT 1000 * EXTRACT(epoch FROM decided_at - trigger_append_at) AS ms"
        " FROM decision_history WHERE trigger_append_at IS NOT NULL"
        " ORDER BY id DESC LIMIT 1000) newest"
    ).fetchone()
    open_row = conn.execute(
        "SELECT COUNT(*) FROM decisions d WHERE d.action = 'REVIEW' AND NOT EXISTS"
        " (SELECT 1 FROM case_resolutions r WHERE r.transaction_id = d.transaction_id)"
    ).fetchone()
    newest = [
        {"rule_id": r[0], "transaction_id": r[1], "account_id": r[2], "amount": f"{r[3]:.2f}"}
        for r in conn.execute(
            "SELECT rule_id, transaction_id, account_id, amount FROM fraud_alerts"
            " WHERE stored_at > now() - interval '10 minutes'"
            " ORDER BY stored_at DESC, alert_id LIMIT 10"
        )
    ]
    return Snapshot(
        inserted_transactions=int(counters.get("transactions", 0)),
        inserted_alerts=int(counters.get("fraud_alerts", 0)),
        alerts_by_rule_1m={str(k): int(v) for k, v in by_rule.items()},
        decisions_by_action_15m=by_action,
        flagged_1m=flagged_1m,
        latency_p50_ms=float(latency[0]) if latency and latency[0] is not None else None,
        latency_p99_ms=float(latency[1]) if latency and latency[1] is not None else None,
        open_cases=int(open_row[0]) if open_row else 0,
        newest_alerts=newest,
    )
