"""Backtest runs asked for from the console: the request, its state and its result.

The console inserts a request and reads; the worker (`backtest/worker.py`) moves it to running
and records how it ended. Every function takes the caller's connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

#: The statuses a run goes through; the last two are final.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UNFINISHED = (QUEUED, RUNNING)
#: The longest error text kept (the column's CHECK).
MAX_ERROR = 8000
PAGE = 50


class ActiveRunError(Exception):
    """Another run is queued or running (at most one at a time)."""

    def __init__(self, active_id: int | None) -> None:
        super().__init__(
            f"backtest #{active_id} is still running: one runs at a time"
            if active_id is not None
            else "another backtest is still running: one runs at a time"
        )
        self.active_id = active_id


@dataclass(frozen=True)
class BacktestRun:
    """One stored run; `result` is the JSON of `backtest.run.backtest` once done."""

    id: int
    requested_by: str
    requested_at: datetime
    period_from: datetime
    period_to: datetime
    overrides: dict[str, str]
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    changed: int | None
    result: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """True once done or failed: the run never changes again."""
        return self.status not in UNFINISHED


_COLUMNS = (
    "id, requested_by, requested_at, period_from, period_to, candidate -> 'overrides', status,"
    " started_at, finished_at, error, jsonb_array_length(result -> 'changes')"
)


def _run(row: tuple[Any, ...], result: dict[str, Any] | None = None) -> BacktestRun:
    (run_id, by, at, start, end, overrides, status, started, finished, error, changed) = row[:11]
    return BacktestRun(
        run_id, by, at, start, end, overrides, status, started, finished, error, changed, result
    )


def request(
    conn: psycopg.Connection,
    *,
    requested_by: str,
    start: datetime,
    end: datetime,
    overrides: dict[str, str],
) -> int:
    """Store a queued run and return its id; ActiveRunError while another is unfinished."""
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO backtest_runs (requested_by, period_from, period_to, candidate)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (requested_by, start, end, Jsonb({"overrides": overrides})),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        active = conn.execute(
            "SELECT id FROM backtest_runs WHERE status = ANY(%s)", (list(UNFINISHED),)
        ).fetchone()
        raise ActiveRunError(active[0] if active else None) from None
    assert row is not None
    return int(row[0])


def get(conn: psycopg.Connection, run_id: int) -> BacktestRun | None:
    """The run with its result, or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, result FROM backtest_runs WHERE id = %s", (run_id,)
    ).fetchone()
    return _run(row[:11], row[11]) if row else None


def recent(
    conn: psycopg.Connection, *, before: int | None = None, limit: int = PAGE
) -> list[BacktestRun]:
    """Runs newest first (keyset on the id), without their results."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM backtest_runs WHERE id < %s ORDER BY id DESC LIMIT %s",
        (before if before is not None else 2**62, limit),
    ).fetchall()
    return [_run(row) for row in rows]


def states(conn: psycopg.Connection, ids: Iterable[int]) -> dict[int, BacktestRun]:
    """The runs `ids` without their results (one query for every watched run)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM backtest_runs WHERE id = ANY(%s)", (sorted(set(ids)),)
    ).fetchall()
    return {row[0]: _run(row) for row in rows}


def start(conn: psycopg.Connection, run_id: int) -> BacktestRun | None:
    """Move a queued run to running (the worker, once); None if it is not queued."""
    row = conn.execute(
        "UPDATE backtest_runs SET status = 'running', started_at = clock_timestamp()"
        f" WHERE id = %s AND status = 'queued' RETURNING {_COLUMNS}",
        (run_id,),
    ).fetchone()
    return _run(row) if row else None


def finish(conn: psycopg.Connection, run_id: int, result: dict[str, Any]) -> bool:
    """Record a running run's result; False if it is not running any more."""
    cursor = conn.execute(
        "UPDATE backtest_runs SET status = 'done', result = %s, finished_at = clock_timestamp()"
        " WHERE id = %s AND status = 'running'",
        (Jsonb(result), run_id),
    )
    return cursor.rowcount == 1


def fail(conn: psycopg.Connection, run_id: int, error: str) -> bool:
    """End an unfinished run as failed with its reason; False if it had ended already."""
    cursor = conn.execute(
        "UPDATE backtest_runs SET status = 'failed', error = %s, finished_at = clock_timestamp()"
        " WHERE id = %s AND status = ANY(%s)",
        (error[:MAX_ERROR], run_id, list(UNFINISHED)),
    )
    return cursor.rowcount == 1


def fail_unfinished(conn: psycopg.Connection, error: str) -> list[int]:
    """End every unfinished run as failed (a console that starts owns no worker yet)."""
    rows = conn.execute(
        "UPDATE backtest_runs SET status = 'failed', error = %s, finished_at = clock_timestamp()"
        " WHERE status = ANY(%s) RETURNING id",
        (error[:MAX_ERROR], list(UNFINISHED)),
    ).fetchall()
    return [row[0] for row in rows]
