"""Cases: the review queue, claims and resolutions (the console's only writes, with the lists).

Every REVIEW or BLOCK decision is a case; a `cases` row appears when an analyst first claims it.
Functions take the caller's connection: a resolution, its case's new status and the list
entries made with it commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg
from psycopg import sql

from streamguard.domain.cases import (
    CASE_ACTIONS,
    CaseState,
    CaseStatus,
    NoCaseError,
    Resolution,
    check_claim,
    check_note,
)
from streamguard.store import lists
from streamguard.store.console_reads import MAX_PAGE, Page

QUEUE_STATUSES = ("UNRESOLVED", "OPEN", "CLAIMED", "RESOLVED")
LISTABLE = ("ACCOUNT", "MERCHANT", "DEVICE")


@dataclass(frozen=True)
class CaseRow:
    """One case in the queue."""

    transaction_id: str
    account_id: str
    action: str
    score: int
    rule_ids: list[str]
    opened_at: datetime
    amount: Decimal | None
    merchant_name: str | None
    status: str
    claimed_by: str | None
    resolution: str | None
    resolved_by: str | None


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters: decision action, case status, rule, least amount, oldest opening."""

    action: str = "REVIEW"
    status: str = "UNRESOLVED"
    rule_id: str | None = None
    min_amount: Decimal | None = None
    opened_before: datetime | None = None


#: Each status as the planner can estimate it. "Not resolved" is an anti-join, not
#: `c.status IS DISTINCT FROM 'RESOLVED'` on the left-joined cases: the planner read that as
#: "about one row" (the statistics see only cases rows, nearly all RESOLVED; the decisions
#: with no case are not counted), so it joined every decision of the action to its transaction
#: and sorted them all (66,618 for a page of 51 at 10 M transactions: 638 ms) instead of walking
#: the decisions' first_decided_at index until the page is full (1 ms).
_STATUS_SQL = {
    "UNRESOLVED": (
        "NOT EXISTS (SELECT FROM cases done WHERE done.transaction_id = d.transaction_id"
        " AND done.status = 'RESOLVED')"
    ),
    "OPEN": "c.transaction_id IS NULL",
    "CLAIMED": "c.status = 'CLAIMED'",
    "RESOLVED": "c.status = 'RESOLVED'",
}

#: The least amount is the decision's own (migration 009): the walk along the action's
#: first_decided_at index checks it on the row it reads, instead of looking up each decision's
#: transaction (most of the action's decisions when few cases reach the amount). The amount
#: shown is the stored transaction's, else the one decided on from its alerts.
_QUEUE = """
SELECT d.transaction_id, d.account_id, d.action, d.score, d.rule_ids, d.first_decided_at,
       COALESCE(t.amount, d.amount), t.merchant_name, COALESCE(c.status, 'OPEN'), c.claimed_by,
       r.resolution, r.resolved_by
FROM decisions d
LEFT JOIN cases c USING (transaction_id)
LEFT JOIN case_resolutions r USING (transaction_id)
LEFT JOIN transactions t USING (transaction_id)
WHERE {where}
ORDER BY d.first_decided_at, d.transaction_id
LIMIT {limit}
"""


def queue(
    conn: psycopg.Connection,
    filters: QueueFilter,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Page:
    """Cases oldest first (the next one to work on leads), after the keyset `after`."""
    if filters.action not in CASE_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(CASE_ACTIONS)}")
    if filters.status not in QUEUE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(QUEUE_STATUSES)}")
    conditions: list[sql.Composable] = [
        sql.SQL("d.action = %s"),
        sql.SQL(_STATUS_SQL[filters.status]),
    ]
    params: list[object] = [filters.action]
    for value, fragment in (
        (filters.rule_id, "d.rule_ids @> ARRAY[%s::text]"),
        (filters.min_amount, "d.amount >= %s"),
        (filters.opened_before, "d.first_decided_at < %s"),
    ):
        if value is not None:
            conditions.append(sql.SQL(fragment))
            params.append(value)
    if after is not None:
        conditions.append(sql.SQL("(d.first_decided_at, d.transaction_id) > (%s, %s)"))
        params.extend(after)
    size = max(1, min(limit, MAX_PAGE))
    query = sql.SQL(_QUEUE).format(
        where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(size + 1)
    )
    rows = [CaseRow(*row) for row in conn.execute(query, params)]
    return Page(rows[:size], len(rows) > size)


def counts(conn: psycopg.Connection, action: str = "REVIEW") -> dict[str, int]:
    """How many cases of this action are open, claimed and resolved."""
    row = conn.execute(
        "SELECT COUNT(*) FILTER (WHERE c.transaction_id IS NULL),"
        " COUNT(*) FILTER (WHERE c.status = 'CLAIMED'),"
        " COUNT(*) FILTER (WHERE c.status = 'RESOLVED')"
        " FROM decisions d LEFT JOIN cases c USING (transaction_id) WHERE d.action = %s",
        (action,),
    ).fetchone()
    open_, claimed, resolved = row if row else (0, 0, 0)
    return {"OPEN": open_, "CLAIMED": claimed, "RESOLVED": resolved}


def get_case(conn: psycopg.Connection, transaction_id: str) -> CaseRow:
    """One case; NoCaseError when the transaction has no REVIEW or BLOCK decision."""
    row = conn.execute(
        sql.SQL(_QUEUE).format(
            where=sql.SQL("d.transaction_id = %s AND d.action = ANY(%s)"), limit=sql.Literal(1)
        ),
        (transaction_id, list(CASE_ACTIONS)),
    ).fetchone()
    if row is None:
        raise NoCaseError(f"no REVIEW or BLOCK decision for transaction {transaction_id!r}")
    return CaseRow(*row)


def next_case(conn: psycopg.Connection, user: str, action: str = "REVIEW") -> str | None:
    """The case to work on next: the oldest one the user holds, else the oldest open one."""
    mine = conn.execute(
        "SELECT c.transaction_id FROM cases c JOIN decisions d USING (transaction_id)"
        " WHERE c.status = 'CLAIMED' AND c.claimed_by = %s AND d.action = %s"
        " ORDER BY d.first_decided_at, d.transaction_id LIMIT 1",
        (user, action),
    ).fetchone()
    if mine:
        return str(mine[0])
    page = queue(conn, QueueFilter(action=action, status="OPEN"), limit=1)
    return page.rows[0].transaction_id if page.rows else None


def _decision(conn: psycopg.Connection, transaction_id: str) -> tuple[str, str, int]:
    row = conn.execute(
        "SELECT account_id, action, version FROM decisions"
        " WHERE transaction_id = %s AND action = ANY(%s)",
        (transaction_id, list(CASE_ACTIONS)),
    ).fetchone()
    if row is None:
        raise NoCaseError(f"no REVIEW or BLOCK decision for transaction {transaction_id!r}")
    return str(row[0]), str(row[1]), int(row[2])


def claim(conn: psycopg.Connection, transaction_id: str, user: str) -> bool:
    """Claim the case for `user` (locked until the caller commits); True when newly claimed.

    Two analysts claiming at once: one insert wins, the other sees the row and CaseError.
    """
    account_id, action, _ = _decision(conn, transaction_id)
    inserted = conn.execute(
        "INSERT INTO cases (transaction_id, account_id, status, claimed_by)"
        " VALUES (%s, %s, 'CLAIMED', %s) ON CONFLICT (transaction_id) DO NOTHING RETURNING 1",
        (transaction_id, account_id, user),
    ).fetchone()
    if inserted:
        return True
    row = conn.execute(
        "SELECT status, claimed_by FROM cases WHERE transaction_id = %s FOR UPDATE",
        (transaction_id,),
    ).fetchone()
    assert row is not None  # the conflicting row exists and rows in cases are never deleted
    return check_claim(CaseState(transaction_id, action, CaseStatus(row[0]), row[1]), user)


def resolve(
    conn: psycopg.Connection,
    transaction_id: str,
    user: str,
    resolution: Resolution,
    note: str,
    *,
    list_type: str = "BLOCK",
    list_entities: Sequence[str] = (),
) -> list[str]:
    """Resolve the case (claiming it if open) and put the chosen entities on a list, with the
    same code as `streamguard lists`; return the list labels made. Raises CaseError/NoCaseError.
    """
    _, action, version = _decision(conn, transaction_id)
    check_note(note)
    claim(conn, transaction_id, user)  # raises when resolved or held by another analyst
    listed = _put_on_lists(conn, transaction_id, user, resolution, list_type, list_entities)
    conn.execute(
        "INSERT INTO case_resolutions (transaction_id, resolution, note, resolved_by,"
        " decision_version, decision_action, listed) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (transaction_id, resolution.value, note, user, version, action, listed),
    )
    conn.execute(
        "UPDATE cases SET status = 'RESOLVED', resolved_at = clock_timestamp()"
        " WHERE transaction_id = %s",
        (transaction_id,),
    )
    return listed


def _put_on_lists(
    conn: psycopg.Connection,
    transaction_id: str,
    user: str,
    resolution: Resolution,
    list_type: str,
    entities: Sequence[str],
) -> list[str]:
    wanted = [e.upper() for e in entities]
    unknown = sorted(set(wanted) - set(LISTABLE))
    if unknown:
        raise lists.ListError(f"can only list {', '.join(LISTABLE)}, not {', '.join(unknown)}")
    if not wanted:
        return []
    row = conn.execute(
        "SELECT account_id, merchant_id, device_id FROM transactions WHERE transaction_id = %s",
        (transaction_id,),
    ).fetchone()
    if row is None:
        raise lists.ListError(
            f"transaction {transaction_id} is not stored yet: its merchant and device are unknown"
        )
    values = dict(zip(LISTABLE, row, strict=True))
    reason = f"case {transaction_id}: {resolution.value.lower().replace('_', ' ')}"
    labels = []
    for entity in dict.fromkeys(wanted):
        kind, _, value = lists.normalise(list_type, entity, values[entity])
        lists.add(conn, kind, entity, value, reason, actor=user)
        labels.append(f"{kind}:{entity}:{value}")
    return labels
