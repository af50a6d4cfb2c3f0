"""The progress display while the benchmark runs: phase, rates, lag and CPU per component."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamguard.bench.probes import ProgressSample


class Progress:
    """A live panel; `update` with the latest sample, `say` for a line that stays."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.phase = "starting"
        self.deadline: float | None = None
        self.previous: ProgressSample | None = None
        self.last: ProgressSample | None = None
        self.live: Live | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self.live = Live(self._render(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, message: str) -> None:
        """Print a line above the panel (or alone, without a terminal)."""
        self.console.print(message, highlight=False)

    def set_phase(self, phase: str, seconds: float | None = None) -> None:
        """Name the current phase and, if it is timed, how long it lasts."""
        self.phase = phase
        self.deadline = time.time() + seconds if seconds else None
        if not self.enabled:
            self.say(f"· {phase}")
        self._refresh()

    def update(self, sample: ProgressSample) -> None:
        """Show a new sample."""
        self.previous, self.last = self.last, sample
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Group:
        left = f" ({max(0, self.deadline - time.time()):.0f} s left)" if self.deadline else ""
        header = Text(f"streamguard bench — {self.phase}{left}", style="bold")
        if self.last is None:
            return Group(header)
        table = Table(show_edge=False, pad_edge=False)
        for column in ("produced", "tx/s in", "stored lag", "rules lag", "alerts"):
            table.add_column(column, justify="right")
        rate = _rate(self.previous, self.last, lambda s: s.produced)
        table.add_row(
            f"{self.last.produced:,}",
            f"{rate:,.0f}" if rate is not None else "-",
            _fmt(max(_lags(self.last), default=None)),
            _fmt(self.last.lag("streamguard-rules")),
            f"{self.last.alerts_produced:,}",
        )
        resources = Table(show_edge=False, pad_edge=False)
        resources.add_column("component")
        resources.add_column("CPU %", justify="right")
        resources.add_column("RSS MB", justify="right")
        for name, (cpu, rss) in sorted(self.last.resources.items()):
            resources.add_row(name, f"{cpu:.0f}", f"{rss:.0f}")
        return Group(header, table, resources)


def _lags(sample: ProgressSample) -> list[int]:
    return [
        lag for g in sample.committed if (lag := sample.lag(g)) is not None and "rules" not in g
    ]


def _fmt(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(
    before: ProgressSample | None, after: ProgressSample, value: Callable[[ProgressSample], int]
) -> float | None:
    if before is None or after.at_s <= before.at_s:
        return None
    return (value(after) - value(before)) / (after.at_s - before.at_s)
