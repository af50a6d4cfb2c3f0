"""`python -m streamguard.backtest.worker RUN_ID`: run one requested backtest, record its end.

The console starts it for each request (`console/backtests.py`), so that the Flink job (a JVM
of its own) never runs in the web server. It logs in as `streamguard_backtest`: it reads what
a backtest reads and writes only the run's state and result. It moves the run from queued to
running, then records done with the result, or failed with the reason. SIGTERM (the console
or `streamguard down` stopping), or its parent dying, ends it as failed: a console that is
gone leaves no backtest running.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import Any

import psycopg

from streamguard.config import Settings, get_settings
from streamguard.store import backtest_runs

log = logging.getLogger("streamguard.backtest.worker")

#: How often the worker checks that the process that started it is still there.
PARENT_CHECK_S = 1.0
#: Exit codes: 0 done, 1 failed (recorded), 3 the run was not queued (nothing done).
NOT_QUEUED = 3


class StoppedError(BaseException):
    """The worker was told to stop (SIGTERM) or its parent is gone. A BaseException, so that no
    `except Exception` on the way (the engine's gateway has some) swallows it."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise StoppedError(f"stopped by signal {signal.Signals(signum).name}")


def watch_parent(parent: int, interval_s: float = PARENT_CHECK_S) -> threading.Thread:
    """A daemon thread that sends this process SIGTERM when `parent` is no longer its parent
    (it died, and the process was handed to init or a subreaper)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("the process that started this backtest (pid %d) is gone", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def _record(
    settings: Settings, run_id: int, *, result: dict[str, Any] | None, error: str | None
) -> None:
    with psycopg.connect(settings.backtest_db_url, autocommit=True, connect_timeout=10) as conn:
        if result is not None:
            backtest_runs.finish(conn, run_id, result)
        else:
            backtest_runs.fail(conn, run_id, error or "failed")


def run(settings: Settings, run_id: int) -> int:
    """Run the queued backtest `run_id` and record how it ended; the exit code."""
    from streamguard.backtest.request import RequestError, checked
    from streamguard.backtest.run import BacktestError, Period, backtest, catalogs

    with psycopg.connect(settings.backtest_db_url, autocommit=True, connect_timeout=10) as conn:
        found = backtest_runs.start(conn, run_id)
    if found is None:
        log.error("backtest #%d is not queued: nothing to do", run_id)
        return NOT_QUEUED
    log.info(
        "backtest #%d: %s to %s, %s", run_id, found.period_from, found.period_to, found.overrides
    )
    try:
        asked = checked(
            settings, found.period_from, found.period_to, found.overrides, max_span=None
        )
        live, candidate = catalogs(settings, None, asked.overrides)
        result = backtest(
            settings,
            Period(asked.start, asked.end),
            live,
            candidate,
            warmup=timedelta(hours=1),
            db_url=settings.backtest_db_url,
        )
    except (RequestError, BacktestError, StoppedError) as exc:
        log.error("backtest #%d failed: %s", run_id, exc)
        _record(settings, run_id, result=None, error=str(exc))
        return 1
    except Exception as exc:  # a bug or an engine failure: the reason is kept, the trace logged
        log.exception("backtest #%d failed", run_id)
        _record(settings, run_id, result=None, error=f"{type(exc).__name__}: {exc}")
        return 1
    _record(settings, run_id, result=result, error=None)
    log.info("backtest #%d done in %s s", run_id, result["seconds"]["total"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse RUN_ID, watch the parent, run."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m streamguard.backtest.worker RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    watch_parent(os.getppid())
    return run(get_settings(), int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
