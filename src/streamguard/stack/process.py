"""Native processes: start detached with a log and a PID file, check, and stop by PID."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A component failed to start or stop; the message names it and its log."""


@dataclass(frozen=True)
class Paths:
    """The state folder's layout: one place for logs, PID files and data."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log(self, name: str) -> Path:
        """The log file of a component."""
        return self.logs / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        """The PID file of a component."""
        return self.run / f"{name}.pid"

    def ensure(self) -> None:
        """Create the folders."""
        for folder in (self.root, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_port(port: int, setting: str, component: str) -> None:
    """Fail clearly when a port is taken, naming the setting that moves it."""
    if port_in_use(port):
        raise StackError(
            f"{component}: port {port} is already in use. Stop whatever listens there, "
            f"or choose another port with {setting}=<port>."
        )


def pid_alive(pid: int) -> bool:
    """True when the PID names a live, non-zombie process."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def read_pid(pidfile: Path) -> int | None:
    """The PID recorded in a PID file, if the process still lives."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def spawn(
    name: str,
    argv: Sequence[str],
    paths: Paths,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a detached process in its own session, logging to its file; return its PID."""
    paths.ensure()
    log = paths.log(name).open("ab")
    process = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    log.close()
    paths.pidfile(name).write_text(f"{process.pid}\n")
    return process.pid


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    component: str,
    log: Path,
    pid: int | None = None,
    interval_s: float = 0.5,
) -> None:
    """Poll `ready` until it holds; fail naming the component and its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not pid_alive(pid):
            raise StackError(f"{component} exited during start-up; see its log: {log}\n{tail(log)}")
        time.sleep(interval_s)
    raise StackError(
        f"{component} was not ready after {timeout_s:.0f} s; see its log: {log}\n{tail(log)}"
    )


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_pid(pid: int, *, timeout_s: float = 20.0, group: bool = True) -> None:
    """SIGTERM the process (and its group, which it leads), then SIGKILL after the timeout."""
    _signal(pid, signal.SIGTERM, group)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    _signal(pid, signal.SIGKILL, group)
    time.sleep(0.2)
    _reap(pid)


def _signal(pid: int, sig: signal.Signals, group: bool) -> None:
    try:
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pidfile(pidfile: Path, *, timeout_s: float = 20.0) -> int | None:
    """Stop the process a PID file names, remove the file, and return the PID it held."""
    pid = read_pid(pidfile)
    if pid is not None:
        stop_pid(pid, timeout_s=timeout_s)
    pidfile.unlink(missing_ok=True)
    return pid
