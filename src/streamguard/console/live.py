"""The overview's live counts: ONE reader queries PostgreSQL every interval, for all browsers.

Each open overview holds a queue of size one; the reader puts the newest JSON in every queue
(replacing what a slow browser has not taken yet). With no browser open it does not query.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict

import psycopg

from streamguard.config import Settings
from streamguard.console import present
from streamguard.console.charts import ChartCache
from streamguard.store.console_reads import Snapshot, overview_snapshot
from streamguard.store.db import connect_console

log = logging.getLogger("streamguard.console")

WINDOW_S = 60.0
RATE_SPAN_S = 5.0
KEEPALIVE_S = 15.0


def rates(samples: deque[tuple[float, int, int]]) -> dict[str, float | None]:
    """tx/s and alerts/s over the newest ~5 s of (time, tx inserted, alerts inserted) samples,
    and the transactions of the whole window (up to a minute). None until two samples exist."""
    if len(samples) < 2:
        return {"tx_per_s": None, "alerts_per_s": None, "tx_window": None, "window_s": None}
    newest = samples[-1]
    base = next((s for s in samples if newest[0] - s[0] <= RATE_SPAN_S), samples[-2])
    if base is newest:
        base = samples[-2]
    span = newest[0] - base[0]
    oldest = samples[0]
    return {
        "tx_per_s": round((newest[1] - base[1]) / span, 1) if span > 0 else None,
        "alerts_per_s": round((newest[2] - base[2]) / span, 1) if span > 0 else None,
        "tx_window": float(newest[1] - oldest[1]),
        "window_s": round(newest[0] - oldest[0], 1),
    }


def flagged_share(flagged_1m: int, tx_window: float | None, window_s: float | None) -> float | None:
    """Share (%) of the last minute's transactions that got a REVIEW or BLOCK in it; None until
    the counters cover (almost) a whole minute, since the two counts must span the same time."""
    if not tx_window or window_s is None or window_s < WINDOW_S - RATE_SPAN_S:
        return None
    return round(100.0 * flagged_1m / tx_window, 2)


def payload(snapshot: Snapshot, samples: deque[tuple[float, int, int]]) -> dict[str, object]:
    """The overview's numbers as one JSON-able dict."""
    figures: dict[str, object] = {**rates(samples), **asdict(snapshot)}
    figures["flagged_pct"] = flagged_share(
        snapshot.flagged_1m,
        figures["tx_window"],  # type: ignore[arg-type]
        figures["window_s"],  # type: ignore[arg-type]
    )
    figures["shown"] = present.overview(figures)
    return figures


class Broadcaster:
    """The one reader behind every open overview."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval_s = settings.console_live_interval_s
        self.queues: set[asyncio.Queue[str]] = set()
        self.samples: deque[tuple[float, int, int]] = deque()
        self.latest: dict[str, object] | None = None
        self.reads = 0
        self.charts = ChartCache()
        self._conn: psycopg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin the reading loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the loop, close the connection and release every listener."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in list(self.queues):
            queue.put_nowait("")  # an empty message ends the stream
        if self._conn is not None:
            self._conn.close()

    def read(self) -> dict[str, object]:
        """One snapshot now (blocking), kept as the newest."""
        if self._conn is None or self._conn.closed:
            self._conn = connect_console(self.settings, autocommit=True)
        try:
            snapshot = overview_snapshot(self._conn)
            charts = self.charts.all_series(self._conn)
        except psycopg.OperationalError:
            self._conn.close()
            self._conn = None
            raise
        self.reads += 1
        now = time.monotonic()
        self.samples.append((now, snapshot.inserted_transactions, snapshot.inserted_alerts))
        while self.samples and now - self.samples[0][0] > WINDOW_S:
            self.samples.popleft()
        figures = payload(snapshot, self.samples)
        figures["charts"] = charts
        self.latest = figures
        return self.latest

    async def _run(self) -> None:
        while True:
            if self.queues:
                try:
                    message = json.dumps(await asyncio.to_thread(self.read), default=str)
                except psycopg.Error as exc:
                    message = json.dumps({"error": f"PostgreSQL: {exc.__class__.__name__}"})
                    log.warning("overview read failed: %s", exc)
                for queue in list(self.queues):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(message)
            await asyncio.sleep(self.interval_s)

    async def listen(self) -> AsyncIterator[str]:
        """Server-sent events for one browser, until it leaves or the console stops."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.queues.add(queue)
        try:
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if not message:
                    return
                yield f"event: overview\ndata: {message}\n\n"
        finally:
            self.queues.discard(queue)
