"""The stack's supervisor: the decision service killed with SIGKILL comes back within 5 s,
`streamguard status` shows the restart and why, and stopping by PID ends both processes."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import psycopg
import pytest

from streamguard.kafka import topics
from streamguard.stack.process import Paths, pid_alive, read_pid, stop_pidfile
from tests.integration.decideproc import make_alert, make_tx, producer, send, wait_for
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


def ledger_row(stack: StackHandle) -> dict:
    rows = json.loads(stack.cli("status", "--json").stdout)
    return next(row for row in rows if row["component"] == "decide-1")


def test_a_killed_decision_service_is_restarted_and_status_says_why(infra: StackHandle) -> None:
    paths = Paths(infra.settings.state_path)
    infra.cli("up", "--only", "decide")
    supervisor = read_pid(paths.pidfile("decide-1"))
    child = None
    try:
        first = ledger_row(infra)
        child = first["pid"]
        assert (first["state"], first["restarts"], first["last_exit"]) == ("running", 0, "")
        assert supervisor is not None and child != supervisor and pid_alive(child)

        os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        row = first
        while time.monotonic() - killed < 10:
            row = ledger_row(infra)
            if row["state"] == "running" and row["pid"] not in (None, child):
                break
            time.sleep(0.2)
        back_after_s = time.monotonic() - killed
        assert row["state"] == "running" and row["pid"] != child, row
        assert back_after_s < 5, f"restarted after {back_after_s:.1f} s"
        assert (row["restarts"], row["last_exit"]) == (1, "killed by SIGKILL")
        assert read_pid(paths.pidfile("decide-1")) == supervisor  # the same supervisor
        child = row["pid"]
        log = paths.log("decide-1").read_text()
        assert "supervisor: decide-1 killed by SIGKILL; restart 1 of 5" in log

        # the new process does the work: an alerted transaction gets its decision
        tx = make_tx(f"SV-{uuid.uuid4().hex[:8]}", "250.00")
        send(producer(infra), topics.TRANSACTIONS, [tx])
        send(producer(infra), topics.FRAUD_ALERTS, [make_alert(tx, "TEST_FORTY", 40)])
        with psycopg.connect(infra.settings.db_url) as conn:
            rows = wait_for(
                conn,
                "SELECT action FROM decisions WHERE transaction_id = %s",
                (tx.transaction_id,),
                lambda found: bool(found),
            )
        assert rows == [("REVIEW",)]
    finally:
        stop_pidfile(paths.pidfile("decide-1"))
    assert not pid_alive(supervisor)
    assert child is None or not pid_alive(child)
    assert ledger_row(infra)["state"] == "stopped"
