"""The overview's charts, cached: finished buckets are read once, the newest ones again.

Each range keeps its bucket counts. A refresh (at most every `REFRESH_S[range]`) reads only
from the start of the newest two buckets it holds, so a 24 h chart over a large ledger costs
one full read at the console's start and then a few seconds' worth of rows each time. A row
that arrives with an event time in a bucket already finished is not counted (late data).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone

import psycopg

from streamguard.domain.charts import RANGES, bucket_starts, series
from streamguard.store import chart_reads

REFRESH_S = {"15m": 2.0, "1h": 10.0, "24h": 60.0}


class ChartCache:
    """Bucket counts per range and line, refreshed incrementally."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, dict[datetime, int]]] = {
            name: {line: {} for line in chart_reads.LINES} for name in RANGES
        }
        self._refreshed: dict[str, float] = {}
        self._lock = threading.Lock()

    def all_series(
        self, conn: psycopg.Connection, now: datetime | None = None
    ) -> dict[str, dict[str, object]]:
        """Every range's series as JSON-able dicts, refreshing the ranges that are due."""
        moment = now or datetime.now(timezone.utc)
        with self._lock:
            for name in RANGES:
                if time.monotonic() - self._refreshed.get(name, -1e9) >= REFRESH_S[name]:
                    self._refresh(conn, name, moment)
                    self._refreshed[name] = time.monotonic()
            return {
                name: asdict(series(RANGES[name], moment, self._counts[name])) for name in RANGES
            }

    def _refresh(self, conn: psycopg.Connection, name: str, now: datetime) -> None:
        chart = RANGES[name]
        starts = bucket_starts(chart, now)
        for line, held in self._counts[name].items():
            for old in [s for s in held if s < starts[0]]:
                del held[old]
            known = sorted(held)
            since = known[-2] if len(known) >= 2 else starts[0]
            fresh = chart_reads.bucket_counts(conn, line, chart.width, since, now)
            for start in [s for s in held if s >= since]:
                del held[start]
            held.update({s: n for s, n in fresh.items() if s >= starts[0]})
            # buckets with no row are known zeros up to now: remember them as read
            for start in starts:
                if start >= since:
                    held.setdefault(start, 0)
