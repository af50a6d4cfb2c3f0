"""Ledger repository: bulk writes of transactions, alerts, labels, dead letters and offsets.

Every function takes the caller's connection and runs inside the caller's transaction, so a
batch's rows and the offsets that produced them commit together or not at all. Rows go in by
COPY (C-speed formatting in psycopg): transactions straight into their table when all are new,
otherwise (and always for alerts and labels) into a temporary stage table, from which one
INSERT ... ON CONFLICT DO NOTHING moves the new ones across: a message seen twice is stored once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

import psycopg

from streamguard.domain.models import FraudAlert, FraudLabel, Transaction, from_epoch_ms

#: Stage tables: the wire's shape (epoch millis, not timestamps), so Python formats only plain
#: values and PostgreSQL does the conversions. Declared here rather than LIKE the real tables,
#: which would need SELECT on the ground-truth labels.
_STAGES = {
    "transactions": """
        transaction_id text, account_id text, card_token text, card_last4 text,
        amount numeric(14, 2), currency text, channel text, merchant_id text,
        merchant_name text, merchant_mcc text, payee_key_type text, city text, state text,
        lat double precision, lon double precision, device_id text, ip_address text,
        event_time timestamptz, kafka_append_at timestamptz""",
    "fraud_alerts": """
        alert_id text, rule_id text, severity text, score_weight integer,
        transaction_id text, account_id text, amount numeric(14, 2), ts_ms bigint,
        evidence jsonb, append_ms bigint""",
    "transaction_labels": "transaction_id text, account_id text, scenario text, is_fraud boolean",
}

#: The transactions columns the ledger fills, in COPY order; the rest have defaults. All but the
#: last two are the wire's fields of the same names (tests/unit/test_contract.py).
TX_COLUMNS = (
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
    "payee_key_type",
    "city",
    "state",
    "lat",
    "lon",
    "device_id",
    "ip_address",
    "event_time",
    "kafka_append_at",
)
_TX_COLUMNS = ", ".join(TX_COLUMNS)
_MS = "to_timestamp({} / 1000.0)"

# New transactions in, per-merchant counters up, and back: the ids that were new.
_INSERT_TRANSACTIONS = f"""
WITH new AS (
    INSERT INTO transactions ({_TX_COLUMNS})
    SELECT {_TX_COLUMNS} FROM stage_transactions
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING transaction_id, merchant_id
), counted AS (
    INSERT INTO merchant_stats AS m (merchant_id, tx_count)
    SELECT merchant_id, COUNT(*) FROM new WHERE merchant_id IS NOT NULL
    GROUP BY merchant_id ORDER BY merchant_id
    ON CONFLICT (merchant_id) DO UPDATE
    SET tx_count = m.tx_count + EXCLUDED.tx_count, updated_at = clock_timestamp()
)
SELECT COALESCE(ARRAY_AGG(transaction_id), '{{}}') FROM new
"""

_INSERT_ALERTS = f"""
WITH new AS (
    INSERT INTO fraud_alerts (alert_id, rule_id, severity, score_weight, transaction_id,
                              account_id, amount, event_time, evidence, kafka_append_at)
    SELECT alert_id, rule_id, severity, score_weight, transaction_id, account_id, amount,
           {_MS.format("ts_ms")}, evidence, {_MS.format("append_ms")}
    FROM stage_fraud_alerts
    ON CONFLICT (alert_id) DO NOTHING
    RETURNING transaction_id
)
SELECT COALESCE(ARRAY_AGG(DISTINCT transaction_id), '{{}}') FROM new
"""


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be used, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str


@dataclass(frozen=True)
class StoredTransactions:
    """What a batch of transactions did: how many were new."""

    inserted: int


def _stage(conn: psycopg.Connection, table: str, rows: Sequence[tuple]) -> None:
    """COPY rows into the session's stage table for `table` (emptied at commit)."""
    stage = f"stage_{table}"
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({_STAGES[table]}) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        _write_rows(cur, f"COPY {stage} FROM STDIN", rows)


def _write_rows(cur: psycopg.Cursor, statement: str, rows: Sequence[tuple]) -> None:
    """One COPY ... FROM STDIN of rows of values, formatted by psycopg."""
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _copy_if_new(conn: psycopg.Connection, copy: Callable[[psycopg.Cursor], None]) -> bool:
    """Run one COPY straight into a table inside a savepoint: the common case, all rows new.

    Returns False, having stored nothing, if any row is already there (a replay).
    """
    try:
        with conn.transaction(), conn.cursor() as cur:
            copy(cur)
    except psycopg.errors.UniqueViolation:
        return False
    return True


class LedgerRow(NamedTuple):
    """One transaction on its way into the ledger: the keys the decisions need, and its COPY
    payload, either a text line (the fast path) or a row of values for psycopg to format."""

    transaction_id: str
    account_id: str
    merchant_id: str | None
    device_id: str | None
    append_ms: int | None
    copy: str | tuple


def ledger_row(tx: Transaction, append_ms: int | None) -> LedgerRow:
    """The ledger row of a validated transaction."""
    values = (
        tx.transaction_id,
        tx.account_id,
        tx.card_token,
        tx.card_last4,
        tx.amount,
        tx.currency,
        tx.channel.value if tx.channel else None,
        tx.merchant_id,
        tx.merchant_name,
        tx.merchant_mcc,
        tx.payee_key_type.value if tx.payee_key_type else None,
        tx.city,
        tx.state,
        tx.lat,
        tx.lon,
        tx.device_id,
        tx.ip_address,
        from_epoch_ms(tx.ts_ms),
        from_epoch_ms(append_ms) if append_ms else None,
    )
    return LedgerRow(
        tx.transaction_id, tx.account_id, tx.merchant_id, tx.device_id, append_ms, values
    )


_MERCHANT_ID = attrgetter("merchant_id")
_COPY = attrgetter("copy")


def _copy_rows(cur: psycopg.Cursor, table: str, rows: Sequence[LedgerRow]) -> None:
    payloads = list(map(_COPY, rows))
    lines = [payload for payload in payloads if type(payload) is str]
    with cur.copy(f"COPY {table} ({_TX_COLUMNS}) FROM STDIN") as copy:
        if lines:
            copy.write("".join(lines))
        if len(lines) < len(payloads):
            for payload in payloads:
                if type(payload) is tuple:
                    copy.write_row(payload)


def copy_new_transactions(conn: psycopg.Connection, rows: Sequence[LedgerRow]) -> bool:
    """COPY rows straight into the table inside a savepoint: the common case, all new.

    Returns False, having stored nothing, if any row is already there. It touches no row another
    batch could be writing, so it may run while the previous batch is still being decided.
    """
    return _copy_if_new(conn, lambda cur: _copy_rows(cur, "transactions", rows))


def save_transactions(
    conn: psycopg.Connection, rows: Sequence[LedgerRow], *, copied: bool
) -> StoredTransactions:
    """Finish storing rows once each; a replayed or repeated one inserts nothing.

    `copied` is what copy_new_transactions returned for these rows in this transaction. If it
    found a row already there, the batch goes through the stage table and INSERT ... ON CONFLICT
    DO NOTHING instead (a second COPY would only fail the same way).
    """
    if not copied:
        return _save_staged(conn, rows)
    _count_merchants(conn, Counter(filter(None, map(_MERCHANT_ID, rows))))
    return StoredTransactions(len(rows))


# Awaiting rows whose transaction is now stored, by this batch or by any instance's. Two batches
# that race for a row: one deletes it, the other waits and finds it gone, so each is decided once
# (in the rare case they lock two rows in opposite orders, PostgreSQL fails one batch with a
# deadlock, which is retryable).
_TAKE_ARRIVED = """
DELETE FROM awaiting_transactions a USING transactions t
WHERE t.transaction_id = a.transaction_id
RETURNING a.transaction_id
"""


def take_arrived(conn: psycopg.Connection) -> list[str]:
    """The transactions decided from an alert alone whose row is now stored, taken once each.

    Run in every batch, not only in batches with transactions: when producers key transactions
    by anything but account_id, a transaction and its alert are on different partition numbers,
    so possibly with different decision instances. Then the alert's batch may miss the
    transaction and the transaction's batch the alert's awaiting row, both uncommitted; whichever
    batch commits next (any instance, within a heartbeat) finds the pair here.
    """
    return sorted(row[0] for row in conn.execute(_TAKE_ARRIVED))


def _count_merchants(conn: psycopg.Connection, counts: Counter[str]) -> None:
    merchants = sorted(counts)
    conn.execute(
        "INSERT INTO merchant_stats AS m (merchant_id, tx_count)"
        " SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT (merchant_id) DO UPDATE"
        " SET tx_count = m.tx_count + EXCLUDED.tx_count, updated_at = clock_timestamp()",
        (merchants, [counts[m] for m in merchants]),
    )


def _save_staged(conn: psycopg.Connection, rows: Sequence[LedgerRow]) -> StoredTransactions:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_transactions"
        f" ({_STAGES['transactions']}) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        _copy_rows(cur, "stage_transactions", rows)
    row = conn.execute(_INSERT_TRANSACTIONS).fetchone()
    conn.execute("TRUNCATE stage_transactions")
    return StoredTransactions(len(row[0]) if row else 0)


def save_alerts(
    conn: psycopg.Connection, items: Sequence[tuple[FraudAlert, int | None]]
) -> list[str]:
    """Store alerts once each (by their deterministic alert_id); return the transaction ids of
    the alerts that were new."""
    rows = [
        (
            a.alert_id,
            a.rule_id,
            a.severity,
            a.score_weight,
            a.transaction_id,
            a.account_id,
            a.amount,
            a.ts_ms,
            json.dumps(a.evidence),
            append_ms,
        )
        for a, append_ms in items
    ]
    _stage(conn, "fraud_alerts", rows)
    row = conn.execute(_INSERT_ALERTS).fetchone()
    conn.execute("TRUNCATE stage_fraud_alerts")
    return list(row[0]) if row else []


#: The label columns, in COPY order: FraudLabel's fields of the same names
#: (tests/unit/test_decide_fastparse.py).
LABEL_COLUMNS = ("transaction_id", "account_id", "scenario", "is_fraud")
_LABEL_COLUMNS = ", ".join(LABEL_COLUMNS)
#: One ground-truth label on its way into `transaction_labels`, in LABEL_COLUMNS order.
LabelRow = tuple[str, str, str, bool]
#: The row of a validated label.
label_row: Callable[[FraudLabel], LabelRow] = attrgetter(*LABEL_COLUMNS)


def save_labels(conn: psycopg.Connection, labels: Sequence[LabelRow]) -> None:
    """Store the generator's ground truth once each (write-only for the services).

    The common case, all new, is one COPY straight into the table inside a savepoint, as for
    transactions. If a label is already there (a replay), the savepoint is rolled back and the
    labels go through the stage table and ON CONFLICT DO NOTHING instead.
    """
    copy = f"COPY transaction_labels ({_LABEL_COLUMNS}) FROM STDIN"
    if _copy_if_new(conn, lambda cur: _write_rows(cur, copy, labels)):
        return
    _stage(conn, "transaction_labels", labels)
    conn.execute(
        f"INSERT INTO transaction_labels ({_LABEL_COLUMNS})"
        f" SELECT {_LABEL_COLUMNS} FROM stage_transaction_labels ON CONFLICT DO NOTHING"
    )
    conn.execute("TRUNCATE stage_transaction_labels")


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


def claim_partitions(
    conn: psycopg.Connection, group_id: str, owner: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Make `owner` the owner of each partition under a new generation; return the generations.

    Waits for a previous owner's open batch on these partitions (it holds their rows FOR SHARE),
    so the offsets read after this, in the same transaction, include what that batch committed.
    """
    ordered = sorted(set(partitions))  # one lock order for every instance
    rows = conn.execute(
        "INSERT INTO partition_owners AS o (group_id, topic, partition, owner, generation)"
        " SELECT %s, t, p, %s, 1 FROM unnest(%s::text[], %s::integer[]) AS u(t, p)"
        " ON CONFLICT (group_id, topic, partition) DO UPDATE"
        " SET owner = EXCLUDED.owner, generation = o.generation + 1,"
        " claimed_at = clock_timestamp()"
        " RETURNING topic, partition, generation",
        (group_id, owner, [t for t, _ in ordered], [p for _, p in ordered]),
    ).fetchall()
    return {(topic, partition): generation for topic, partition, generation in rows}


def lost_partitions(
    conn: psycopg.Connection, group_id: str, owner: str, claimed: dict[tuple[str, int], int]
) -> list[tuple[str, int]]:
    """Lock the claimed partitions' rows until commit; return those another claim took since.

    Run first in a batch's transaction: a claim by another instance then waits for this batch,
    and a batch that started after such a claim sees it here and must roll back.
    """
    ordered = sorted(claimed)
    rows = conn.execute(
        "SELECT topic, partition, owner, generation FROM partition_owners"
        " WHERE group_id = %s AND (topic, partition) IN"
        " (SELECT * FROM unnest(%s::text[], %s::integer[]))"
        " ORDER BY topic, partition FOR SHARE",
        (group_id, [t for t, _ in ordered], [p for _, p in ordered]),
    ).fetchall()
    held = {(t, p) for t, p, who, gen in rows if who == owner and gen == claimed[(t, p)]}
    return [tp for tp in ordered if tp not in held]
