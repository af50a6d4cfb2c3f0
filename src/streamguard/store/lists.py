"""Block and allow lists: the repository behind `streamguard lists` and the decision service.

Every change is recorded in list_changes by a trigger; the service reloads the lists when the
newest change id moves, so an edit takes effect within seconds, without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

LIST_TYPES = ("BLOCK", "ALLOW")
ENTITY_TYPES = ("ACCOUNT", "MERCHANT", "DEVICE")


class ListError(ValueError):
    """An unknown list or entity type, or an empty value."""


@dataclass(frozen=True)
class ListEntry:
    """One entity on one list."""

    list_type: str
    entity_type: str
    entity_value: str
    reason: str = ""
    added_by: str = ""
    added_at: datetime | None = None


def normalise(list_type: str, entity_type: str, value: str) -> tuple[str, str, str]:
    """Upper-case the kinds, strip the value, and refuse what the schema would refuse."""
    list_kind, entity_kind, value = list_type.upper(), entity_type.upper(), value.strip()
    if list_kind not in LIST_TYPES:
        raise ListError(f"list must be one of {', '.join(LIST_TYPES)}, not {list_type!r}")
    if entity_kind not in ENTITY_TYPES:
        raise ListError(f"entity must be one of {', '.join(ENTITY_TYPES)}, not {entity_type!r}")
    if not 1 <= len(value) <= 64:
        raise ListError("the value must have 1 to 64 characters")
    return list_kind, entity_kind, value


def _set_actor(conn: psycopg.Connection, actor: str | None) -> None:
    """Name the person behind this transaction's list changes (the audit trigger reads it)."""
    if actor is not None:
        conn.execute("SELECT set_config('streamguard.actor', %s, true)", (actor,))


def add(
    conn: psycopg.Connection,
    list_type: str,
    entity_type: str,
    value: str,
    reason: str,
    *,
    actor: str | None = None,
) -> bool:
    """Put an entity on a list (or update its reason); return True when it was not there.

    `actor` (the console's analyst) is recorded as who added it; by default the database role.
    """
    kind, entity, value = normalise(list_type, entity_type, value)
    _set_actor(conn, actor)
    row = conn.execute(
        "INSERT INTO list_entries (list_type, entity_type, entity_value, reason, added_by)"
        " VALUES (%s, %s, %s, %s, COALESCE(%s, current_user))"
        " ON CONFLICT (list_type, entity_type, entity_value)"
        " DO UPDATE SET reason = EXCLUDED.reason RETURNING (xmax = 0)",
        (kind, entity, value, reason, actor),
    ).fetchone()
    return bool(row and row[0])


def remove(
    conn: psycopg.Connection,
    list_type: str,
    entity_type: str,
    value: str,
    *,
    actor: str | None = None,
) -> bool:
    """Take an entity off a list; return True when it was there."""
    kind, entity, value = normalise(list_type, entity_type, value)
    _set_actor(conn, actor)
    cur = conn.execute(
        "DELETE FROM list_entries WHERE list_type = %s AND entity_type = %s AND entity_value = %s",
        (kind, entity, value),
    )
    return cur.rowcount > 0


def entries(conn: psycopg.Connection, list_type: str | None = None) -> list[ListEntry]:
    """Every entry (of one list, if given), in a stable order."""
    kind = normalise(list_type, "ACCOUNT", "x")[0] if list_type else None
    rows = conn.execute(
        "SELECT list_type, entity_type, entity_value, reason, added_by, added_at"
        " FROM list_entries WHERE %s::text IS NULL OR list_type = %s"
        " ORDER BY list_type, entity_type, entity_value",
        (kind, kind),
    )
    return [ListEntry(*row) for row in rows]


def latest_change(conn: psycopg.Connection) -> int:
    """The id of the newest list change (0 when there is none): cheap to poll."""
    row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM list_changes").fetchone()
    return int(row[0]) if row else 0
