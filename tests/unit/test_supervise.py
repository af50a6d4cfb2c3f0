"""The stack's supervisor over real (tiny) child processes: restarts, backoff, limit, reasons."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from streamguard.stack.process import Paths
from streamguard.stack.supervise import (
    Supervisor,
    exit_reason,
    read_state,
    restart_delay_s,
    state_file,
)


def _child(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def _supervise(tmp_path: Path, script: str, *, max_restarts: int = 3) -> tuple[int, dict]:
    path = tmp_path / "x.supervisor.json"
    code = Supervisor(
        "x", _child(script), path, max_restarts=max_restarts, first_delay_s=0.01
    ).run()
    return code, json.loads(path.read_text())


def test_a_child_that_keeps_dying_is_restarted_up_to_the_limit(tmp_path: Path) -> None:
    code, state = _supervise(tmp_path, "import sys; sys.exit(1)", max_restarts=3)
    assert code == 1
    assert (state["state"], state["restarts"], state["last_exit"]) == ("gave up", 3, "exit 1")
    assert state["child_pid"] is None


def test_a_child_that_dies_once_comes_back_and_the_restart_is_counted(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    script = (
        "import os, pathlib, signal, sys\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
        "if len(runs.read_text()) == 1: os.kill(os.getpid(), signal.SIGKILL)\n"
        "sys.exit(0)\n"
    )
    code, state = _supervise(tmp_path, script)
    assert runs.read_text() == "xx"
    assert code == 0  # the second run finished: exit 0 is not restarted
    assert (state["restarts"], state["state"], state["last_exit"]) == (1, "exited", "exit 0")


def test_a_fatal_exit_is_not_restarted(tmp_path: Path) -> None:
    code, state = _supervise(tmp_path, "import sys; sys.exit(2)")
    assert code == 2
    assert state["restarts"] == 0 and state["state"] == "failed"
    assert state["last_exit"].startswith("exit 2 (fatal")


def test_exit_reasons_name_the_signal() -> None:
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert exit_reason(1) == "exit 1"


def test_restart_delays_double_up_to_thirty_seconds() -> None:
    assert [restart_delay_s(n, 1.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_the_state_file_sits_next_to_the_pid_file(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.ensure()
    assert state_file(paths, "decide-1").parent == paths.pidfile("decide-1").parent
    assert read_state(paths, "decide-1") is None
    state_file(paths, "decide-1").write_text(
        json.dumps({"name": "decide-1", "supervisor_pid": 7, "restarts": 2, "last_exit": "exit 1"})
    )
    found = read_state(paths, "decide-1")
    assert found is not None and (found.restarts, found.last_exit) == (2, "exit 1")
