"""A supervisor per component: `python -m streamguard.stack.supervise --name N --state F -- CMD`.

It runs CMD as its child, in its own process group (the stack starts the supervisor as a session
leader), and when the child dies it starts it again after a backoff (1 s, doubling, at most
MAX_DELAY_S), up to STREAMGUARD_SUPERVISOR_MAX_RESTARTS times in a row; a run that lasted
STABLE_S resets the count. Each restart is logged (to the component's log, which the child shares)
and recorded with the exit reason in a JSON file next to the PID file, which `streamguard status`
reads. It does not restart a child that exited 0 (it finished) or 2 (a fatal error that a restart
cannot fix: see streamguard.errors). SIGTERM to the group (`streamguard down`) ends both.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from streamguard.stack.process import Paths, spawn

MAX_DELAY_S = 30.0
STABLE_S = 60.0
#: The exit code of a fatal error (configuration, credentials): restarting cannot help.
FATAL_EXIT = 2


@dataclass(frozen=True)
class SupervisorState:
    """What `streamguard status` shows about a supervised component."""

    name: str
    supervisor_pid: int
    child_pid: int | None = None
    state: str = "starting"  # running | restarting | stopped | exited | failed | gave up
    restarts: int = 0
    last_exit: str = ""
    last_exit_at: str = ""


def state_file(paths: Paths, name: str) -> Path:
    """The supervisor's JSON file of a component, next to its PID file."""
    return paths.run / f"{name}.supervisor.json"


def read_state(paths: Paths, name: str) -> SupervisorState | None:
    """The last state a component's supervisor wrote, if any."""
    try:
        return SupervisorState(**json.loads(state_file(paths, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def spawn_supervised(
    name: str,
    argv: Sequence[str],
    paths: Paths,
    *,
    env: dict[str, str] | None = None,
    max_restarts: int = 5,
    first_delay_s: float = 1.0,
) -> int:
    """Like process.spawn, with a supervisor in front; return the supervisor's PID."""
    state_file(paths, name).unlink(missing_ok=True)
    wrapper = [
        sys.executable,
        "-m",
        "streamguard.stack.supervise",
        "--name",
        name,
        "--state",
        str(state_file(paths, name)),
        "--max-restarts",
        str(max_restarts),
        "--first-delay-s",
        str(first_delay_s),
        "--",
        *argv,
    ]
    return spawn(name, wrapper, paths, env=env)


def exit_reason(returncode: int) -> str:
    """A child's exit status in words."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == FATAL_EXIT:
        return f"exit {FATAL_EXIT} (fatal error, not restarted; see the log)"
    return f"exit {returncode}"


def restart_delay_s(failures: int, first_delay_s: float) -> float:
    """The wait before restart number `failures` in a row."""
    return min(MAX_DELAY_S, first_delay_s * 2 ** max(0, failures - 1))


class Supervisor:
    """Runs one child, restarts it when it dies, and writes its state for `status`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        state_path: Path,
        *,
        max_restarts: int,
        first_delay_s: float,
    ) -> None:
        self.argv = list(argv)
        self.path = state_path
        self.max_restarts = max_restarts
        self.first_delay_s = first_delay_s
        self.state = SupervisorState(name, os.getpid())
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        """Supervise until stopped or given up; the supervisor's exit code."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        failures = 0
        while not self.stopping:
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
            self._write(child_pid=self.child.pid, state="running")
            returncode = self.child.wait()
            if self.stopping:
                break
            reason = exit_reason(returncode)
            self._write(last_exit=reason, last_exit_at=datetime.now(timezone.utc).isoformat())
            if returncode in (0, FATAL_EXIT):
                self._write(state="exited" if returncode == 0 else "failed", child_pid=None)
                self._say(f"{reason}; not restarting")
                return returncode
            failures = 1 if time.monotonic() - started >= STABLE_S else failures + 1
            if failures > self.max_restarts:
                self._write(state="gave up", child_pid=None)
                self._say(f"{reason}; gave up after {self.max_restarts} restarts in a row")
                return 1
            delay = restart_delay_s(failures, self.first_delay_s)
            self._write(state="restarting", child_pid=None)
            self._say(
                f"{reason}; restart {failures} of {self.max_restarts} in a row in {delay:.1f} s"
            )
            self._sleep(delay)
            if not self.stopping:
                self._write(restarts=self.state.restarts + 1)
        self._write(state="stopped", child_pid=None)
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # it had it already if the whole group was signalled

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)

    def _write(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self.state)))
        os.replace(partial, self.path)

    def _say(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} supervisor: {self.state.name} {text}", flush=True)


def main(args: Sequence[str] | None = None) -> int:
    """Parse `--name N --state F [--max-restarts K] [--first-delay-s S] -- CMD...`; supervise."""
    parser = argparse.ArgumentParser(prog="python -m streamguard.stack.supervise")
    parser.add_argument("--name", required=True)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--max-restarts", type=int, default=5)
    parser.add_argument("--first-delay-s", type=float, default=1.0)
    parser.add_argument("command", nargs="+")
    options = parser.parse_args(args)
    supervisor = Supervisor(
        options.name,
        options.command,
        options.state,
        max_restarts=options.max_restarts,
        first_delay_s=options.first_delay_s,
    )
    return supervisor.run()


if __name__ == "__main__":
    raise SystemExit(main())
