"""Decision repository: the evidence a decision reads, and the decisions and history it writes.

Every function takes the caller's connection and runs in the caller's transaction: a batch's
rows, its decisions, the transactions' new statuses and the consumer offsets commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import psycopg

from streamguard.domain.models import Action
from streamguard.domain.policy import Verdict
from streamguard.domain.scoring import AccountHistory, AlertFact, MerchantRisk, Reason, TxFacts

HISTORY_DAYS = 30
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class StoredTransaction:
    """A stored transaction, as the decision needs it."""

    transaction_id: str
    account_id: str
    amount: Decimal
    event_time: datetime
    append_at: datetime | None
    facts: TxFacts


@dataclass(frozen=True)
class StoredAlert:
    """A stored alert, as the decision needs it."""

    transaction_id: str
    account_id: str
    amount: Decimal
    event_time: datetime
    append_at: datetime | None
    fact: AlertFact
    alert_id: str  # rule_id:transaction_id, as the rule wrote it


@dataclass(frozen=True)
class NewVersion:
    """A verdict to record, with what caused it (for the latency figures)."""

    transaction_id: str
    account_id: str
    verdict: Verdict
    trigger: str  # 'transaction', 'alert' or 'escalation' (another transaction's alert)
    trigger_append_at: datetime | None
    decided_ms: int
    #: The amount decided on (the transaction's, or its first alert's before it is stored).
    amount: Decimal | None = None


@dataclass(frozen=True)
class HistoryRow:
    """A recorded version, ready to publish."""

    id: int
    transaction_id: str
    account_id: str
    verdict: Verdict
    decided_ms: int


def load_transactions(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, StoredTransaction]:
    """The stored transactions among `ids`."""
    rows = conn.execute(
        "SELECT transaction_id, account_id, amount, event_time, kafka_append_at, merchant_id,"
        " merchant_mcc, city, device_id FROM transactions WHERE transaction_id = ANY(%s)",
        (list(ids),),
    )
    return {
        r[0]: StoredTransaction(r[0], r[1], r[2], r[3], r[4], TxFacts(r[2], r[5], r[6], r[7], r[8]))
        for r in rows
    }


def load_alerts(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, list[StoredAlert]]:
    """Every stored alert about the transactions `ids`."""
    rows = conn.execute(
        "SELECT transaction_id, account_id, amount, event_time, kafka_append_at, rule_id,"
        " severity, score_weight, evidence, alert_id FROM fraud_alerts"
        " WHERE transaction_id = ANY(%s)"
        " ORDER BY alert_id",
        (list(ids),),
    )
    alerts: dict[str, list[StoredAlert]] = {}
    for r in rows:
        fact = AlertFact(r[5], r[6], r[7], {str(k): str(v) for k, v in (r[8] or {}).items()})
        alerts.setdefault(r[0], []).append(StoredAlert(r[0], r[1], r[2], r[3], r[4], fact, r[9]))
    return alerts


def load_verdicts(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, Verdict]:
    """The current decisions of `ids`, locked until the caller's transaction ends."""
    rows = conn.execute(
        "SELECT transaction_id, action, score, reasons, rule_ids, list_hits, version"
        " FROM decisions WHERE transaction_id = ANY(%s) FOR UPDATE",
        (list(ids),),
    )
    return {
        r[0]: Verdict(
            action=Action(r[1]),
            score=r[2],
            reasons=tuple(Reason(x["code"], x["weight"], x["text"]) for x in r[3]),
            rule_ids=tuple(r[4]),
            list_hits=tuple(r[5]),
            version=r[6],
        )
        for r in rows
    }


_HISTORY = f"""
SELECT k.transaction_id, h.n, h.avg_amount, h.cities, h.devices, al.n, dc.reviews, dc.blocks
FROM unnest(%(ids)s::text[], %(accounts)s::text[], %(times)s::timestamptz[])
    AS k(transaction_id, account_id, at)
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS n, AVG(r.amount) AS avg_amount,
           COALESCE(ARRAY_AGG(DISTINCT r.city) FILTER (WHERE r.city IS NOT NULL), '{{}}')
               AS cities,
           COALESCE(ARRAY_AGG(DISTINCT r.device_id) FILTER (WHERE r.device_id IS NOT NULL),
                    '{{}}') AS devices
    FROM (SELECT t.amount, t.city, t.device_id FROM transactions t
          WHERE t.account_id = k.account_id AND t.transaction_id <> k.transaction_id
            AND t.event_time < k.at AND t.event_time >= k.at - interval '{HISTORY_DAYS} days'
          ORDER BY t.event_time DESC LIMIT {HISTORY_LIMIT}) r
) h
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS n FROM fraud_alerts a
    WHERE a.account_id = k.account_id AND a.transaction_id <> k.transaction_id
      AND a.event_time <= k.at AND a.event_time >= k.at - interval '{HISTORY_DAYS} days'
      AND a.event_time < %(live_until)s
) al
CROSS JOIN LATERAL (
    SELECT COUNT(*) FILTER (WHERE d.action = 'REVIEW') AS reviews,
           COUNT(*) FILTER (WHERE d.action = 'BLOCK') AS blocks
    FROM decisions d
    WHERE d.account_id = k.account_id AND d.transaction_id <> k.transaction_id
      AND d.first_decided_at >= k.at - interval '{HISTORY_DAYS} days'
      AND d.first_decided_at < %(live_until)s
) dc
"""


def load_histories(
    conn: psycopg.Connection,
    keys: Sequence[tuple[str, str, datetime]],
    *,
    live_until: datetime | None = None,
) -> dict[str, AccountHistory]:
    """For each (transaction_id, account_id, event_time): the account's 30 days before it.

    `live_until` leaves out the stored alerts and decisions from that moment on: a backtest
    counts its own for its period instead."""
    if not keys:
        return {}
    ids, accounts, times = (list(column) for column in zip(*keys, strict=True))
    until = live_until or datetime.max.replace(tzinfo=timezone.utc)
    rows = conn.execute(
        _HISTORY, {"ids": ids, "accounts": accounts, "times": times, "live_until": until}
    )
    return {
        r[0]: AccountHistory(
            tx_count=r[1],
            avg_amount=r[2],
            cities=frozenset(r[3]),
            devices=frozenset(r[4]),
            prior_alerts=r[5],
            prior_reviews=r[6],
            prior_blocks=r[7],
        )
        for r in rows
    }


@dataclass(frozen=True)
class WindowMember:
    """A stored transaction inside some alert's window (`domain/bursts.py`)."""

    transaction_id: str
    account_id: str
    event_time: datetime
    amount: Decimal


_WINDOW_MEMBERS = """
SELECT DISTINCT t.transaction_id, t.account_id, t.event_time, t.amount
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(account_id, start_at, end_at)
JOIN transactions t ON t.account_id = w.account_id
 AND t.event_time >= w.start_at AND t.event_time <= w.end_at
"""


def load_window_members(
    conn: psycopg.Connection, windows: Sequence[tuple[str, datetime, datetime]]
) -> list[WindowMember]:
    """The stored transactions of each (account_id, start, end) window, ends included (one
    statement for the batch, on the account-and-time index)."""
    if not windows:
        return []
    accounts, starts, ends = (list(column) for column in zip(*windows, strict=True))
    rows = conn.execute(_WINDOW_MEMBERS, (accounts, starts, ends))
    return [WindowMember(r[0], r[1], r[2], r[3]) for r in rows]


def load_merchants(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, MerchantRisk]:
    """The counters of the merchants `ids`."""
    rows = conn.execute(
        "SELECT merchant_id, tx_count, flagged_count FROM merchant_stats"
        " WHERE merchant_id = ANY(%s)",
        (sorted(set(ids)),),
    )
    return {r[0]: MerchantRisk(r[1], r[2]) for r in rows}


def _reasons_json(verdict: Verdict) -> str:
    return json.dumps(
        [{"code": r.code, "weight": r.weight, "text": r.text} for r in verdict.reasons]
    )


_SAVE_VERSIONS = """
WITH v AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::jsonb[],
                         %s::text[], %s::text[], %s::int[], %s::text[], %s::timestamptz[],
                         %s::bigint[], %s::numeric[])
        AS v(transaction_id, account_id, action, score, reasons, rule_ids, list_hits, version,
             trigger, trigger_append_at, decided_ms, amount)
), current AS (
    INSERT INTO decisions AS d (transaction_id, account_id, action, score, reasons, rule_ids,
                                list_hits, version, amount)
    SELECT transaction_id, account_id, action, score, reasons,
           string_to_array(rule_ids, ' '), string_to_array(list_hits, ' '), version, amount
    FROM v
    ON CONFLICT (transaction_id) DO UPDATE SET action = EXCLUDED.action,
        score = EXCLUDED.score, reasons = EXCLUDED.reasons, rule_ids = EXCLUDED.rule_ids,
        list_hits = EXCLUDED.list_hits, version = EXCLUDED.version,
        amount = COALESCE(EXCLUDED.amount, d.amount), decided_at = clock_timestamp()
)
INSERT INTO decision_history (transaction_id, account_id, action, score, reasons, rule_ids,
                              list_hits, version, trigger, trigger_append_at, decided_ms)
SELECT transaction_id, account_id, action, score, reasons, string_to_array(rule_ids, ' '),
       string_to_array(list_hits, ' '), version, trigger, trigger_append_at, decided_ms FROM v
RETURNING id, transaction_id
"""


def save_versions(conn: psycopg.Connection, versions: Sequence[NewVersion]) -> list[HistoryRow]:
    """Upsert the current decisions and append each version to the history (one statement).

    Rule ids and list labels never contain spaces (UPPER_SNAKE ids, `KIND:TYPE:value` with
    values from the lists' CHECK), so they travel space-joined rather than as nested arrays.
    """
    if not versions:
        return []
    columns = list(
        zip(
            *(
                (
                    v.transaction_id,
                    v.account_id,
                    v.verdict.action.value,
                    v.verdict.score,
                    _reasons_json(v.verdict),
                    " ".join(v.verdict.rule_ids),
                    " ".join(v.verdict.list_hits),
                    v.verdict.version,
                    v.trigger,
                    v.trigger_append_at,
                    v.decided_ms,
                    v.amount,
                )
                for v in versions
            ),
            strict=True,
        )
    )
    ids = dict(
        (tx_id, history_id)
        for history_id, tx_id in conn.execute(_SAVE_VERSIONS, [list(c) for c in columns])
    )
    return [
        HistoryRow(ids[v.transaction_id], v.transaction_id, v.account_id, v.verdict, v.decided_ms)
        for v in versions
    ]


def await_transactions(conn: psycopg.Connection, ids: Sequence[str]) -> None:
    """Remember transactions decided from their alerts alone, to re-decide them on arrival."""
    if ids:
        conn.execute(
            "INSERT INTO awaiting_transactions (transaction_id)"
            " SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (list(ids),),
        )


_APPLY_STATUS = """
WITH wanted AS (
    SELECT * FROM unnest(%s::text[], %s::text[]) AS w(transaction_id, status)
), before AS (
    SELECT t.transaction_id, t.is_fraud AS was_fraud FROM transactions t
    JOIN wanted w USING (transaction_id) WHERE t.status <> w.status FOR UPDATE OF t
), changed AS (
    UPDATE transactions t SET status = w.status, is_fraud = w.status <> 'APPROVED'
    FROM wanted w JOIN before b USING (transaction_id)
    WHERE t.transaction_id = w.transaction_id
    RETURNING t.merchant_id, NOT b.was_fraud AND t.is_fraud AS newly_flagged
)
INSERT INTO merchant_stats AS m (merchant_id, flagged_count)
SELECT merchant_id, COUNT(*) FROM changed WHERE newly_flagged AND merchant_id IS NOT NULL
GROUP BY merchant_id
ORDER BY merchant_id  -- one lock order for every decision instance: fewer deadlocks
ON CONFLICT (merchant_id) DO UPDATE
SET flagged_count = m.flagged_count + EXCLUDED.flagged_count, updated_at = clock_timestamp()
"""


def apply_statuses(conn: psycopg.Connection, statuses: dict[str, str]) -> None:
    """Set the stored transactions' status and is_fraud; count newly flagged ones per merchant."""
    if statuses:
        ids = sorted(statuses)
        conn.execute(_APPLY_STATUS, (ids, [statuses[i] for i in ids]))


def load_unpublished(conn: psycopg.Connection, limit: int = 1000) -> list[HistoryRow]:
    """Versions recorded but not yet confirmed on Kafka (after a crash, say), oldest first."""
    rows = conn.execute(
        "SELECT id, transaction_id, account_id, action, score, reasons, rule_ids, list_hits,"
        " version, decided_ms FROM decision_history WHERE published_at IS NULL"
        " ORDER BY id LIMIT %s",
        (limit,),
    )
    return [
        HistoryRow(
            r[0],
            r[1],
            r[2],
            Verdict(
                action=Action(r[3]),
                score=r[4],
                reasons=tuple(Reason(x["code"], x["weight"], x["text"]) for x in r[5]),
                rule_ids=tuple(r[6]),
                list_hits=tuple(r[7]),
                version=r[8],
            ),
            r[9],
        )
        for r in rows
    ]


def mark_published(conn: psycopg.Connection, ids: Sequence[int]) -> None:
    """Note that Kafka acknowledged these versions."""
    if ids:
        conn.execute(
            "UPDATE decision_history SET published_at = clock_timestamp()"
            " WHERE id = ANY(%s) AND published_at IS NULL",
            (list(ids),),
        )
