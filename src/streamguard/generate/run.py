"""One generator run from options to exit code: engine, sink, mode, progress and final counts."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streamguard.generate import modes
from streamguard.generate.delivery import DeliveryReport, KafkaSink, NullSink, Sink, TextSink
from streamguard.generate.engine import Engine, GeneratorConfig
from streamguard.generate.scenarios import SCENARIOS
from streamguard.kafka.producer import KafkaDeliveryError

OUTPUTS = ("kafka", "stdout", "none")


@dataclass
class RunOptions:
    """Everything a run needs besides its mode's own numbers."""

    config: GeneratorConfig = field(default_factory=GeneratorConfig)
    seed: int | None = None
    output: str = "kafka"
    delivery_timeout_s: float | None = None
    quiet: bool = False


def make_sink(options: RunOptions, *, bulk: bool, say: Callable[[str], None]) -> Sink:
    """The sink named by `options.output`."""
    if options.output == "stdout":
        return TextSink(sys.stdout)
    if options.output == "none":
        return NullSink()
    if options.output != "kafka":
        raise ValueError(f"unknown output {options.output!r}; choose from {', '.join(OUTPUTS)}")
    from streamguard.config import get_settings

    return KafkaSink(
        get_settings(), bulk=bulk, delivery_timeout_s=options.delivery_timeout_s, say=say
    )


def _console(options: RunOptions) -> Console:
    # With --output stdout the data owns stdout: talk on stderr.
    return Console(stderr=options.output == "stdout", highlight=False)


def _finish(
    engine: Engine,
    sink: Sink,
    run: Callable[[], modes.RunStats],
    console: Console,
    options: RunOptions,
) -> int:
    try:
        stats = run()
        closing = time.perf_counter()
        report: DeliveryReport = sink.close()
    except KafkaDeliveryError as exc:
        return _delivery_failed(sink, exc, console)
    stats.elapsed_s += time.perf_counter() - closing  # acknowledged, not just queued
    by_scenario = ", ".join(
        f"{name} {int(count):,}"
        for name, count in zip(SCENARIOS, engine.tx_by_scenario, strict=True)
        if count
    )
    console.print(
        f"generated {stats.transactions:,} transactions in {stats.elapsed_s:.1f} s "
        f"({stats.rate:,.{0 if stats.rate >= 10 else 1}f} tx/s): {by_scenario or 'none'}"
    )
    if engine.crowded:
        console.print(
            f"[yellow]warning:[/yellow] {engine.crowded:,} legitimate transactions came "
            "closer than 21 s to their account's previous one (rate too high for the "
            "population: raise --accounts), so HIGH_VELOCITY may fire on legitimate traffic"
        )
    if options.output == "kafka":
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{report.summary()}[/{colour}]")
        for error in report.errors:
            console.print(f"  [red]{error}[/red]")
    return 0 if report.ok else 1


def _delivery_failed(sink: Sink, error: KafkaDeliveryError, console: Console) -> int:
    """A message Kafka did not take ended the run: wait for the rest, say what, exit 1."""
    try:
        report = sink.close()
    except KafkaDeliveryError:  # more of the same: the first one is what is said
        report = sink.report
    console.print(f"[red]stopped: {error}[/red]")
    console.print(f"[red]{report.summary()}[/red]")
    for line in report.errors:
        console.print(f"  [red]{line}[/red]")
    return 1


def batch(
    options: RunOptions,
    *,
    count: int,
    start: datetime | None = None,
    tx_per_account_day: float = modes.DEFAULT_TX_PER_ACCOUNT_DAY,
) -> int:
    """Batch mode with a progress bar; returns the exit code."""
    console = _console(options)
    engine = Engine(options.config, seed=options.seed, mode="batch")
    sink = make_sink(options, bulk=True, say=console.print)
    start_ms = int(start.timestamp() * 1000) if start else None

    def run() -> modes.RunStats:
        with (
            modes.Stopper() as stopper,
            Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=options.quiet,
                transient=False,
            ) as progress,
        ):
            task = progress.add_task("batch", total=count)
            return modes.run_batch(
                engine,
                sink,
                count=count,
                start_ms=start_ms,
                tx_per_account_day=tx_per_account_day,
                on_chunk=lambda done: progress.update(task, completed=done),
                stopper=stopper,
            )

    return _finish(engine, sink, run, console, options)


def paced(options: RunOptions, *, rate: float, follow_cycle: bool, duration_s: float | None) -> int:
    """Stream (steady) or realistic (daily cycle) mode until stopped; returns the exit code."""
    console = _console(options)
    mode = "realistic" if follow_cycle else "stream"
    engine = Engine(options.config, seed=options.seed, mode=mode)
    headroom = engine.population.size / (options.config.min_legit_gap_s * 1.5)
    if rate > headroom and not options.quiet:
        console.print(
            f"[yellow]note:[/yellow] {rate:,.0f} tx/s is a lot for {engine.population.size:,} "
            "accounts; legitimate traffic may start to look like velocity bursts. "
            "Raise --accounts for a clean baseline."
        )
    sink = make_sink(options, bulk=rate >= 5000, say=console.print)
    if not options.quiet:
        what = "daily mean" if follow_cycle else "steady"
        console.print(f"{mode}: {rate:,.0f} tx/s ({what}); Ctrl+C stops and flushes")

    def run() -> modes.RunStats:
        with modes.Stopper() as stopper:
            return modes.run_paced(
                engine,
                sink,
                rate=rate,
                follow_cycle=follow_cycle,
                duration_s=duration_s,
                stopper=stopper,
                say=None if options.quiet else console.print,
                poll=getattr(sink, "poll", None),
            )

    return _finish(engine, sink, run, console, options)


def attack(
    options: RunOptions,
    *,
    scenario: str,
    account: str | None,
    episodes: int,
    wait: bool,
    at: datetime | None,
) -> int:
    """Attack mode: one scenario on demand, narrated; returns the exit code."""
    console = _console(options)
    engine = Engine(options.config, seed=options.seed, mode="attack")
    engine.scheduling = False
    sink = make_sink(options, bulk=False, say=console.print)

    def run() -> modes.RunStats:
        with modes.Stopper() as stopper:
            return modes.run_attack(
                engine,
                sink,
                scenario=scenario,
                account=account,
                episodes=episodes,
                at_ms=int(at.timestamp() * 1000) if at else None,
                wait=wait,
                stopper=stopper,
                say=console.print,
            )

    return _finish(engine, sink, run, console, options)
