"""`streamguard sql` as a user runs it: a process whose printed lines a test reads as they come."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections import deque
from types import TracebackType

from tests.stackfixture import StackHandle


class SqlRows:
    """A continuous `streamguard sql QUERY OPTIONS...` over the live topics, its output read by a
    thread so that every wait has a deadline; stopped on leaving a `with` block."""

    def __init__(self, stack: StackHandle, query: str, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamguard.cli.main", "sql", query, *options],
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: deque[str] = deque(maxlen=40)  # its last words, for a failure's message
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line)

    def line(self, timeout_s: float) -> str:
        """The next line printed (AssertionError if none comes within `timeout_s`)."""
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout_s} s{self._stderr()}") from None

    def first_value_until(self, wanted: str, timeout_s: float) -> list[str]:
        """The first column of every row printed until `wanted` is (AssertionError if never)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while wanted not in seen:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{wanted} never printed; rows so far: {seen}") from None
            if line.startswith("+I | "):
                seen.append(line.split(" | ")[1].strip())
        return seen

    def wait(self, timeout_s: float) -> int:
        """Its exit code, once it ends by itself (after `-n` rows)."""
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _stderr(self) -> str:
        return f"; its stderr ends:\n{''.join(self.errors)}" if self.errors else ""

    def __enter__(self) -> SqlRows:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
