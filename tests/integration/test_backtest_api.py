"""/api/v1/backtests on the whole running stack: a request checked before anything runs, one run
at a time, the worker's result read back, and the roles that may write what.

The console started by `streamguard up` starts the worker (`python -m streamguard.backtest.worker`)
as a process of its own; the history is stored through the stack's decision service
(tests/backtestdata.py).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from streamguard.store.db import connect_console
from tests.backtestdata import CANDIDATE, History, store_history
from tests.consoledata import add_user
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

PASSWORD = "backtest api password"


@pytest.fixture(scope="module")
def history(stack: StackHandle) -> History:
    return store_history(stack, days_back=41)


@pytest.fixture(scope="module")
def token(stack: StackHandle) -> str:
    add_user(stack.settings, "bruno", PASSWORD)
    result = stack.cli("console", "add-token", "bruno", "--label", "backtests")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture()
def api(stack: StackHandle, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.settings.console_url, headers=headers, timeout=30) as client:
        yield client


def _body(history: History, **changes: Any) -> dict[str, Any]:
    key, _, value = CANDIDATE.partition("=")
    body = {
        "from": history.start.isoformat(),
        "to": history.end.isoformat(),
        "overrides": {key: value},
    }
    return {**body, **changes}


def _runs(stack: StackHandle) -> int:
    with psycopg.connect(stack.settings.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM backtest_runs").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"overrides": {"HIGH_AMOUNT.nope": "1"}}, "unknown rule parameter(s): HIGH_AMOUNT.nope"),
        ({"overrides": {"HIGH_AMOUNT.threshold_brl": "1;DROP TABLE x"}}, "threshold_brl"),
        ({"overrides": {}}, "at least one override"),
        ({"to": "2020-01-01T00:00:00"}, "must be after"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T00:02:00Z"}, "no stored transaction"),
    ],
)
def test_a_bad_request_is_422_with_its_reason_and_stores_nothing(
    stack: StackHandle,
    api: httpx.Client,
    history: History,
    changes: dict[str, Any],
    reason: str,
) -> None:
    before = _runs(stack)
    answer = api.post("/api/v1/backtests", json=_body(history, **changes))
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"]
    assert _runs(stack) == before


def test_a_request_needs_a_token_or_a_session_with_its_csrf_header(
    stack: StackHandle, history: History
) -> None:
    with httpx.Client(base_url=stack.settings.console_url) as anonymous:
        assert anonymous.post("/api/v1/backtests", json=_body(history)).status_code == 401
        assert anonymous.get("/api/v1/backtests/1").status_code == 401


def test_a_backtest_runs_in_its_worker_and_its_result_is_read_back(
    stack: StackHandle, api: httpx.Client, history: History
) -> None:
    started = api.post("/api/v1/backtests", json=_body(history))
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] in ("queued", "running") and run["requested_by"] == "bruno"
    assert started.headers["location"] == f"/api/v1/backtests/{run['id']}"
    # one at a time: a second request while this one is unfinished is refused
    second = api.post("/api/v1/backtests", json=_body(history))
    assert second.status_code == 409 and f"#{run['id']}" in second.json()["detail"]
    deadline = time.monotonic() + 240
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        run = api.get(f"/api/v1/backtests/{run['id']}").json()
    assert run["status"] == "done", run
    result = run["result"]
    assert result["transactions"] == len(history.by_amount)
    assert {c["transaction_id"] for c in result["changes"]} == history.changed
    assert all(c["candidate_action"] == "APPROVE" for c in result["changes"])
    live, candidate = result["catalogs"]["live"], result["catalogs"]["candidate"]
    assert live["alerts_per_rule"]["HIGH_AMOUNT"] == 3
    assert candidate["alerts_per_rule"]["HIGH_AMOUNT"] == 1
    assert live["quality"]["per_rule"]["HIGH_AMOUNT"]["precision"] == 0.6667
    assert run["changed"] == 2
    assert result["period"]["from"].startswith(history.start.isoformat()[:16])
    listed = api.get("/api/v1/backtests").json()
    assert listed[0]["id"] == run["id"] and listed[0]["result"] is None


def test_the_console_role_cannot_write_a_result_and_a_finished_run_never_changes(
    stack: StackHandle, api: httpx.Client, history: History
) -> None:
    (latest,) = api.get("/api/v1/backtests").json()[:1]
    assert latest["status"] == "done"
    with (
        connect_console(stack.settings) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("UPDATE backtest_runs SET result = '{}' WHERE id = %s", (latest["id"],))
    with psycopg.connect(stack.settings.backtest_db_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO backtest_runs (requested_by, period_from, period_to, candidate)"
                " VALUES ('x', now(), now() + interval '1 minute', '{\"overrides\": {}}')"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM console_tokens")
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="cannot change"):
            conn.execute(
                "UPDATE backtest_runs SET status = 'failed', error = 'x' WHERE id = %s",
                (latest["id"],),
            )


def _worker_of(run_id: int) -> int | None:
    """The PID of the live worker process of `run_id` (the console's child), if any."""
    wanted = ["-m", "streamguard.backtest.worker", str(run_id)]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[1:4] == wanted:
            return int(proc.name)
    return None


def _state(pid: int) -> str | None:
    """The process' state letter (R, S, Z, ...), or None once it is reaped."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return None


def _gone(pid: int) -> bool:
    """Neither running nor a zombie: its parent reaped it."""
    return _state(pid) in (None, "X")


def _ended(pid: int) -> bool:
    """Not running any more (an orphan's zombie is init's to reap, not ours)."""
    return _state(pid) in (None, "X", "Z")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (Path("/proc") / str(pid) / "task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def test_a_worker_stopped_mid_run_records_why_and_leaves_no_process(
    stack: StackHandle, api: httpx.Client, history: History
) -> None:
    run = api.post("/api/v1/backtests", json=_body(history)).json()
    deadline = time.monotonic() + 60
    while run["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = api.get(f"/api/v1/backtests/{run['id']}").json()
    assert run["status"] == "running", run
    pid = _worker_of(run["id"])
    assert pid is not None
    deadline = time.monotonic() + 30  # until its engine's JVM is up: a child of the worker
    while not _children(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    jvms = _children(pid)
    assert jvms, "the worker started no engine process"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        run = api.get(f"/api/v1/backtests/{run['id']}").json()
    assert run["status"] == "failed" and "SIGTERM" in run["error"], run
    deadline = time.monotonic() + 20
    while not (_gone(pid) and all(_ended(p) for p in jvms)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(pid), "the console did not reap its worker"
    assert all(_ended(p) for p in jvms), "the worker's engine outlived it"


def test_openapi_describes_the_backtest_routes(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    post = schema["paths"]["/api/v1/backtests"]["post"]
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "BacktestRunOut"
    )
    result = schema["components"]["schemas"]["BacktestResultOut"]
    assert {"changes", "catalogs", "period"} <= set(result["properties"])
    assert schema["components"]["schemas"]["BacktestIn"]["properties"]["from"]["format"] == (
        "date-time"
    )
