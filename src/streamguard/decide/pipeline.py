"""The decision service's threads: the caller polls, a copier COPYs, a writer decides and commits.

While the caller polls and validates batch N+2, the copier opens batch N+1's transaction on one
connection and COPYs its transactions, and the writer decides and commits batch N on the other
(each PostgreSQL backend works in its own process meanwhile). Batches commit one at a time, in
order, each with its offsets: still exactly once. The first failure of either stage stops both;
the caller reads it from `failure` and decides what to do (service.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from streamguard.decide.batches import OpenBatch
from streamguard.decide.parse import Batch
from streamguard.errors import Kind, classify

log = logging.getLogger(__name__)


class Pipeline:
    """Two stage threads over two connections, fed with `put` and ended with `stop`."""

    def __init__(
        self,
        connections: tuple[psycopg.Connection, psycopg.Connection],
        *,
        begin: Callable[[Batch, psycopg.Connection], OpenBatch],
        finish: Callable[[OpenBatch], None],
    ) -> None:
        self._begin = begin
        self._finish = finish
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._opened: queue.Queue[OpenBatch | None] = queue.Queue(maxsize=1)
        self._free: queue.Queue[psycopg.Connection] = queue.Queue()
        for conn in connections:
            self._free.put(conn)
        self.failure: BaseException | None = None
        self.running = False
        self._stages = [
            threading.Thread(target=self._stage, args=(work,), name=name, daemon=True)
            for work, name in ((self._copy, "decide-copier"), (self._commit, "decide-writer"))
        ]

    def start(self) -> None:
        """Start the copier and the writer."""
        for thread in self._stages:
            thread.start()
        self.running = True

    def put(self, batch: Batch) -> None:
        """Queue a batch for the stages (waits while both are busy, gives up on a failure)."""
        self._put(self._queue, batch)

    def stop(self) -> BaseException | None:
        """Let the stages finish what is queued, wait for them; the failure, if any."""
        self._put(self._queue, None)
        for thread in self._stages:
            thread.join()
        self.running = False
        return self.failure

    def drain(self) -> None:
        """Wait until every queued batch is committed (before a rebalance moves partitions)."""
        # Only while the threads run: once stopped nothing is queued but their end-of-work
        # marker, which no one marks done.
        while self.running and self._queue.unfinished_tasks and self.failure is None:
            time.sleep(0.01)

    def _put(self, into: queue.Queue, item: object) -> None:
        while self.failure is None:
            try:
                into.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _take(self, source: queue.Queue) -> Any:
        while self.failure is None:
            try:
                return source.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def _stage(self, work: Callable[[], bool]) -> None:
        """Run one stage until it is told to stop or a stage fails."""
        try:
            while work():
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            if classify(exc).kind is Kind.RETRYABLE:
                log.warning("writing a batch failed: %s", classify(exc).reason)
            else:
                log.exception("writing a batch failed")
            self.failure = exc

    def _copy(self) -> bool:
        """Take the next batch and a free connection; open its transaction and COPY into it."""
        batch = self._take(self._queue)
        if batch is None:
            self._put(self._opened, None)
            return False
        conn = self._take(self._free)
        if conn is None:
            return False
        opened = self._begin(batch, conn)
        self._put(self._opened, opened)
        if not opened.copied:
            # Its rows go in by INSERT ... ON CONFLICT, which would wait on rows the next COPY
            # has not committed while that batch waits for this one: let this one commit first.
            while self._opened.unfinished_tasks and self.failure is None:
                time.sleep(0.001)
        return True

    def _commit(self) -> bool:
        """Finish and commit the oldest opened batch, then free its connection."""
        opened = self._take(self._opened)
        if opened is None:
            return False
        try:
            self._finish(opened)
        finally:
            self._free.put(opened.conn)
            self._opened.task_done()
            self._queue.task_done()
        return True
