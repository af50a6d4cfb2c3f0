"""The console's backtests without services: requests checked, run states worded, the run page
escaped, workers reaped and stopped, and a worker that outlives its parent stopping."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from streamguard.backtest.request import (
    RequestError,
    checked,
    parse_lines,
    parse_moment,
)
from streamguard.config import Settings
from streamguard.console.backtests import BacktestRunner, run_state
from streamguard.store.backtest_runs import BacktestRun
from tests.unit.test_backtest_report import EVIL, result

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)


def settings(tmp_path: Path | None = None) -> Settings:
    # a port nothing listens on: a reaper's database write fails at once and is only logged
    extra = {"state_dir": tmp_path} if tmp_path else {}
    return Settings(_env_file=None, pg_port=1, **extra)  # type: ignore[call-arg]


def a_run(**changes: object) -> BacktestRun:
    run = BacktestRun(
        id=7,
        requested_by="ana",
        requested_at=T0,
        period_from=T0 - timedelta(days=1),
        period_to=T0,
        overrides={"HIGH_AMOUNT.threshold_brl": "5000.00"},
        status="running",
        started_at=T0 + timedelta(seconds=2),
        finished_at=None,
        error=None,
        changed=None,
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def test_overrides_are_one_rule_param_value_a_line() -> None:
    text = "HIGH_AMOUNT.threshold_brl = 5000.00\n\n  HIGH_VELOCITY.min_count=5  \n"
    assert parse_lines(text) == {
        "HIGH_AMOUNT.threshold_brl": "5000.00",
        "HIGH_VELOCITY.min_count": "5",
    }
    for bad in ("HIGH_AMOUNT.threshold_brl", "threshold_brl=1", ".x=1", "X.y="):
        with pytest.raises(RequestError, match="is not RULE.param=value"):
            parse_lines(bad)


def test_a_moment_without_an_offset_is_utc() -> None:
    assert parse_moment("2026-11-02T15:00") == T0
    assert parse_moment("2026-11-02T12:00-03:00") == T0
    with pytest.raises(RequestError, match="not an ISO-8601 time"):
        parse_moment("yesterday")


@pytest.mark.parametrize(
    ("start", "end", "overrides", "reason"),
    [
        (T0, T0, {"HIGH_AMOUNT.threshold_brl": "1"}, "must be after from"),
        (T0, T0 + timedelta(days=32), {"HIGH_AMOUNT.threshold_brl": "1"}, "longer than 31 days"),
        (T0, T0 + timedelta(hours=1), {}, "at least one override"),
        (T0, T0 + timedelta(hours=1), {"NOPE.x": "1"}, "unknown rule parameter(s): NOPE.x"),
        (T0, T0 + timedelta(hours=1), {"HIGH_AMOUNT.nope": "1"}, "HIGH_AMOUNT.nope"),
        (T0, T0 + timedelta(hours=1), {"HIGH_AMOUNT.threshold_brl": "1; DROP"}, "threshold_brl"),
    ],
)
def test_a_request_that_cannot_run_is_refused_with_its_reason(
    start: datetime, end: datetime, overrides: dict[str, str], reason: str
) -> None:
    with pytest.raises(RequestError) as refused:
        checked(settings(), start, end, overrides)
    assert reason in str(refused.value)


def test_a_good_request_is_checked_without_loading_the_engine() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys
                from datetime import datetime, timedelta, timezone
                from streamguard.backtest.request import checked
                from streamguard.config import Settings
                from streamguard.console.app import create_app
                create_app(Settings(_env_file=None))
                t = datetime(2026, 11, 2, tzinfo=timezone.utc)
                checked(Settings(_env_file=None), t, t + timedelta(hours=1),
                        {"HIGH_AMOUNT.threshold_brl": "5000.00"})
                print("pyflink" in sys.modules, "py4j" in sys.modules)
                """
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"]


def test_a_runs_state_says_how_long_it_has_run_and_when_it_is_final() -> None:
    now = T0 + timedelta(seconds=32)
    assert run_state(a_run(), now) == {
        "id": 7,
        "status": "running",
        "finished": False,
        "elapsed": "running 30 s",
        "error": None,
    }
    queued = a_run(status="queued", started_at=None)
    assert run_state(queued, now)["elapsed"] == "waiting 32 s"
    failed = a_run(status="failed", error="no Kafka", finished_at=T0 + timedelta(seconds=12))
    assert run_state(failed, now) == {
        "id": 7,
        "status": "failed",
        "finished": True,
        "elapsed": "took 10 s",
        "error": "no Kafka",
    }


def test_the_run_page_escapes_every_value_and_draws_the_reports_charts() -> None:
    from streamguard.console import web
    from streamguard.console.backtest_routes import run_context

    run = a_run(
        status="done",
        finished_at=T0 + timedelta(seconds=40),
        requested_by=EVIL,
        overrides={"HIGH_AMOUNT.threshold_brl": EVIL},
        result=result(),
        changed=1,
    )
    html = web.env.get_template("backtest.html").render(
        csrf="t", user="ana", path="/backtests/7", down=[], **run_context(run)
    )
    assert EVIL not in html and "&lt;script&gt;" in html
    assert html.count("<svg") == 2 and "backtest.js" not in html  # finished: nothing to push
    assert "/decisions/TX-%3Cscript%3Ealert%281%29%3C/script%3E" in html
    running = web.env.get_template("backtest.html").render(
        csrf="t", user="ana", path="/backtests/7", down=[], **run_context(a_run())
    )
    assert 'data-events="/backtests/7/events"' in running and "/static/backtest.js" in running


def _sleeper(tmp_path: Path, *, trap: bool) -> list[str]:
    """A stand-in worker: records its run id, optionally ignores SIGTERM, sleeps."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import signal, sys, time\n"
        f"open({str(tmp_path / 'ran')!r}, 'w').write(sys.argv[1])\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if trap else "")
        + "time.sleep(60)\n"
    )
    return [sys.executable, str(script)]


def _wait(predicate: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_runner_reaps_its_workers_and_stops_them_with_the_console(tmp_path: Path) -> None:
    runner = BacktestRunner(settings(tmp_path), command=_sleeper(tmp_path, trap=False))
    pid = runner.start(41)
    _wait(lambda: (tmp_path / "ran").exists())
    assert (tmp_path / "ran").read_text() == "41" and runner.running == {41: pid}
    runner.stop(timeout_s=5)
    _wait(lambda: runner.running == {})  # reaped by its thread: no zombie left
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_worker_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    runner = BacktestRunner(settings(tmp_path), command=_sleeper(tmp_path, trap=True))
    pid = runner.start(42)
    _wait(lambda: (tmp_path / "ran").exists())
    began = time.monotonic()
    runner.stop(timeout_s=0.5)
    assert time.monotonic() - began < 5
    _wait(lambda: runner.running == {})
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_worker_whose_parent_dies_stops_itself(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    child = textwrap.dedent(
        f"""
        import os, signal, sys, time
        from streamguard.backtest.worker import watch_parent
        def stopped(signum, frame):
            open({str(marker)!r}, "w").write(signal.Signals(signum).name)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stopped)
        watch_parent(os.getppid(), interval_s=0.05)
        time.sleep(30)
        """
    )
    # the parent starts the worker and exits at once: the worker is handed to init
    parent = subprocess.run(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
            "time.sleep(1)\n",
        ],
        check=True,
    )
    assert parent.returncode == 0
    _wait(marker.exists, timeout_s=15)
    assert marker.read_text() == "SIGTERM"
