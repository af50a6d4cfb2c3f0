"""The console's backtests: a request checked and stored, its worker started and reaped, and
the one reader that pushes run states to every open run page.

The web process never runs Flink: each run is `python -m streamguard.backtest.worker RUN_ID`,
a child of the console in its process group (so `streamguard down` stops it too). A thread per
child waits for it, so no zombie is left; a worker that ended without recording its outcome
(killed) is ended as failed by the console. At most one run is queued or running (a unique
index): each is a Flink job on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any

import psycopg

from streamguard.backtest.request import RequestError, checked
from streamguard.config import Settings
from streamguard.stack.process import Paths
from streamguard.store import backtest_reads, backtest_runs
from streamguard.store.backtest_runs import BacktestRun
from streamguard.store.db import connect_console

log = logging.getLogger("streamguard.console")

WORKER = ("-m", "streamguard.backtest.worker")
#: How long a worker has to record its end after SIGTERM before it is killed.
STOP_TIMEOUT_S = 5.0
KEEPALIVE_S = 15.0


def request_run(
    conn: psycopg.Connection,
    settings: Settings,
    user: str,
    start: datetime,
    end: datetime,
    overrides: dict[str, str],
) -> int:
    """Check and store a request (committed); RequestError or ActiveRunError before anything
    runs."""
    asked = checked(settings, start, end, overrides)
    if backtest_reads.append_span(conn, asked.start, asked.end) is None:
        raise RequestError(
            f"no stored transaction has an event time from {start.isoformat()} to {end.isoformat()}"
        )
    run_id = backtest_runs.request(
        conn, requested_by=user, start=asked.start, end=asked.end, overrides=asked.overrides
    )
    conn.commit()
    return run_id


def run_state(run: BacktestRun, now: datetime) -> dict[str, Any]:
    """What a run page shows of a run's state, as pushed to it."""
    since = run.started_at or run.requested_at
    until = run.finished_at or now
    seconds = max(0, round((until - since).total_seconds()))
    verb = {"queued": "waiting", "running": "running"}.get(run.status, "took")
    return {
        "id": run.id,
        "status": run.status,
        "finished": run.finished,
        "elapsed": f"{verb} {seconds} s",
        "error": run.error,
    }


class BacktestRunner:
    """Starts the worker of each stored request, reaps it, and ends it when the console stops."""

    def __init__(self, settings: Settings, command: Sequence[str] | None = None) -> None:
        self.settings = settings
        #: The worker's command; the run id is appended (a test passes a stand-in).
        self.command = list(command or (sys.executable, *WORKER))
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, run_id: int) -> int:
        """Start the worker of a queued run; its PID."""
        paths = Paths(self.settings.state_path)
        paths.logs.mkdir(parents=True, exist_ok=True)
        with (paths.logs / "backtest.log").open("ab") as out:
            child = subprocess.Popen(
                [*self.command, str(run_id)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        with self._lock:
            self._children[run_id] = child
        threading.Thread(
            target=self._reap, args=(run_id, child), name=f"backtest-{run_id}", daemon=True
        ).start()
        log.info("backtest #%d started (worker pid %d)", run_id, child.pid)
        return child.pid

    @property
    def running(self) -> dict[int, int]:
        """Run id -> worker PID of the workers not yet reaped."""
        with self._lock:
            return {run_id: child.pid for run_id, child in self._children.items()}

    def _reap(self, run_id: int, child: subprocess.Popen[bytes]) -> None:
        code = child.wait()
        with self._lock:
            self._children.pop(run_id, None)
        log.info("backtest #%d worker exited with code %d", run_id, code)
        if code == 0:
            return
        try:
            with connect_console(self.settings, autocommit=True) as conn:
                if backtest_runs.fail(
                    conn,
                    run_id,
                    f"the backtest worker exited with code {code} before it"
                    " recorded an outcome (see logs/backtest.log)",
                ):
                    log.warning("backtest #%d ended as failed: its worker died", run_id)
        except psycopg.Error as exc:
            log.warning("backtest #%d: could not record its worker's end: %s", run_id, exc)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every worker (each records its end as failed), SIGKILL the ones that stay."""
        with self._lock:
            children = list(self._children.items())
        for _, child in children:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        for run_id, child in children:
            try:
                child.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("backtest #%d did not stop in %.0f s: killing it", run_id, timeout_s)
                child.kill()
                child.wait()

    def fail_leftovers(self) -> list[int]:
        """End as failed the runs a previous console left unfinished (it owns no worker yet)."""
        with connect_console(self.settings, autocommit=True) as conn:
            ended = backtest_runs.fail_unfinished(
                conn, "the console stopped before this backtest finished"
            )
        if ended:
            log.warning("backtests %s were left unfinished: ended as failed", ended)
        return ended


class RunWatch:
    """The one reader behind every open run page: one query a second for all watched runs."""

    def __init__(self, settings: Settings, interval_s: float = 1.0) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.queues: dict[int, set[asyncio.Queue[str]]] = {}
        self.reads = 0
        self._conn: psycopg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin the reading loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the loop, release every listener, close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queues in list(self.queues.values()):
            for queue in list(queues):
                queue.put_nowait("")
        if self._conn is not None:
            self._conn.close()

    def read(self, ids: list[int]) -> dict[int, str]:
        """The watched runs' states as JSON, by run id (blocking)."""
        if self._conn is None or self._conn.closed:
            self._conn = connect_console(self.settings, autocommit=True)
        try:
            runs = backtest_runs.states(self._conn, ids)
        except psycopg.OperationalError:
            self._conn.close()
            self._conn = None
            raise
        self.reads += 1
        now = datetime.now(timezone.utc)
        return {run_id: json.dumps(run_state(run, now)) for run_id, run in runs.items()}

    async def _run(self) -> None:
        while True:
            watched = [run_id for run_id, queues in self.queues.items() if queues]
            if watched:
                try:
                    messages = await asyncio.to_thread(self.read, watched)
                except psycopg.Error as exc:
                    log.warning("backtest states read failed: %s", exc)
                    messages = {}
                for run_id, message in messages.items():
                    for queue in list(self.queues.get(run_id, ())):
                        if queue.full():
                            queue.get_nowait()
                        queue.put_nowait(message)
            await asyncio.sleep(self.interval_s)

    async def listen(self, run_id: int) -> AsyncIterator[str]:
        """Server-sent events of one run's state for one browser, until the run is finished,
        the browser leaves or the console stops."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.queues.setdefault(run_id, set()).add(queue)
        try:
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if not message:
                    return
                yield f"event: backtest\ndata: {message}\n\n"
                if json.loads(message)["finished"]:
                    return
        finally:
            queues = self.queues.get(run_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    self.queues.pop(run_id, None)
