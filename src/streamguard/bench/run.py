"""`streamguard bench`, the orchestration: a private stack, the raw limits, then each load step.

A step runs the generator at one rate: a warm-up (not measured), the measured window, and a tail
that keeps traffic flowing so that event-time windows covering the measured window can fire
(their watermark only moves with new events). Then the generator stops, the pipeline drains, and
the figures are read back from PostgreSQL for the transactions whose event time falls in the
measured window.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from streamguard.bench import collect, limits, load, probes, report
from streamguard.bench.display import Progress
from streamguard.bench.private_stack import PrivateStack, private_stack
from streamguard.kafka import topics
from streamguard.store.db import connect

SAMPLE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class BenchPlan:
    """What to run."""

    rates: tuple[int, ...] = (5000, 20000)
    duration_s: float = 60.0
    warmup_s: float = 15.0
    drain_timeout_s: float = 180.0
    limits: bool = True
    limit_records: int = 1_000_000
    copy_rows: int = 300_000
    seed: int = 42
    accounts: int | None = None  # None: enough for each step's rate (load.accounts_for)
    out_dir: Path = Path("benchmarks/results")
    keep_state: bool = False
    stack_env: dict[str, str] = field(default_factory=dict)


def tail_s(stack: PrivateStack) -> float:
    """How long traffic must go on after the window so that its windows fire."""
    s = stack.settings
    return float(s.watermark_delay_s + s.idle_timeout_s + 5)


def run(plan: BenchPlan, progress: Progress) -> dict[str, Any]:
    """Run the whole benchmark and return the report.

    Each step gets a fresh stack: a backlog, a failing job or state left by one step must not
    pass for the next step's figures. The raw limits are measured on the first stack, idle.
    """
    started = datetime.now(timezone.utc)
    raw: dict[str, Any] = {}
    steps = []
    for index, rate in enumerate(plan.rates):
        progress.set_phase("starting a private stack (Kafka, PostgreSQL, Flink, decide)")
        # The pipeline only: the console would be one more process sharing the measured cores.
        with private_stack(
            "postgres,kafka,rules,decide", keep=plan.keep_state, extra=_stack_env(plan)
        ) as stack:
            progress.say(f"stack up in {stack.settings.state_path}")
            load_blocklist(stack)
            if index == 0 and plan.limits:
                raw = measure_limits(stack, plan, progress)
            steps.append(run_step(stack, rate, plan, progress, seed=plan.seed + index))
            progress.set_phase("stopping the stack")
    return report.assemble(
        started=started,
        machine=machine(),
        settings=stack_summary(stack),
        plan=plan_summary(plan, tail_s(stack)),
        limits=raw,
        steps=steps,
    )


def load_blocklist(stack: PrivateStack) -> int:
    """Put the generator's blocklist scenario ids on the decision service's block list."""
    from streamguard.store import lists

    added = 0
    with connect(stack.settings) as conn:
        for entity_type, values in load.blocklist().items():
            for value in values:
                added += lists.add(conn, "BLOCK", entity_type, value, "bench: blocklist scenario")
        conn.commit()
    return added


def measure_limits(stack: PrivateStack, plan: BenchPlan, progress: Progress) -> dict[str, Any]:
    """Kafka produce/consume and PostgreSQL COPY, one after the other on the idle stack."""
    settings = stack.settings
    samples = load.sample_transactions(2000, plan.seed)
    result: dict[str, Any] = {}
    folder = settings.state_path / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    limits.create_scratch_topic(settings)
    progress.set_phase(f"raw limit: Kafka produce ({plan.limit_records:,} records)")
    result["kafka_produce"] = _guarded(
        lambda: limits.kafka_produce_limit(
            settings, [tx.to_wire() for tx in samples], plan.limit_records, folder
        )
    )
    progress.set_phase(f"raw limit: Kafka consume ({plan.limit_records:,} records)")
    result["kafka_consume"] = _guarded(
        lambda: limits.kafka_consume_limit(settings, plan.limit_records)
    )
    _guarded(lambda: limits.delete_scratch_topic(settings))
    progress.set_phase(f"raw limit: PostgreSQL COPY ({plan.copy_rows:,} rows)")
    result["postgres_copy"] = _guarded(
        lambda: limits.postgres_copy_limit(settings, samples, plan.copy_rows)
    )
    for name, figures in result.items():
        rate = figures.get("records_per_s") or figures.get("rows_per_s")
        progress.say(f"{name}: {rate:,.0f}/s" if rate else f"{name}: {figures}")
    return result


def _guarded(action: Any) -> dict[str, Any]:
    try:
        return action() or {}
    except Exception as exc:  # noqa: BLE001 - a failed limit is reported, the run goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def run_step(
    stack: PrivateStack, rate: int, plan: BenchPlan, progress: Progress, *, seed: int
) -> dict:
    """One load step: warm up, measure, tail, drain, collect.

    Each step has its own seed: the generator's transaction ids follow from it, and a repeated
    id would be dropped by the decision service as a replay.
    """
    label = f"{rate:,} tx/s" if rate else "flat out"
    offsets = probes.OffsetProbe(stack.settings)
    log = stack.settings.state_path / "logs" / "bench-generator.log"
    accounts = plan.accounts or load.accounts_for(rate)
    generator = load.start_generator(rate, seed, stack.env, log, accounts)
    resources = probes.ResourceProbe(stack.settings.state_path, {"generator": generator.pid})
    samples: list[probes.ProgressSample] = []
    try:
        progress.set_phase(f"{label}: generator building {accounts:,} accounts")
        _wait_for_traffic(generator, offsets, resources, samples, progress, log)
        t0 = time.time()
        window = (t0 + plan.warmup_s, t0 + plan.warmup_s + plan.duration_s)
        end = window[1] + tail_s(stack)
        for phase, until in (
            (f"{label}: warm-up", window[0]),
            (f"{label}: measuring", window[1]),
            (f"{label}: tail", end),
        ):
            progress.set_phase(phase, until - time.time())
            _sample_until(until, offsets, resources, samples, progress)
            if generator.poll() is not None:
                raise RuntimeError(f"the generator exited early; see {log}")
    finally:
        load.stop_generator(generator)
    progress.set_phase(f"{label}: draining")
    drained = _drain(offsets, resources, samples, progress, plan.drain_timeout_s)
    offsets.close()
    progress.set_phase(f"{label}: reading the results back from PostgreSQL")
    span = (_utc(samples[0].at_s), _utc(samples[-1].at_s + 1))
    with connect(stack.settings) as conn:
        data, decisions = collect.collect(conn, (_utc(window[0]), _utc(window[1])), span[0])
        series = collect.per_second(conn, span, decisions)
        counts = collect.window_counts(conn, (_utc(window[0]), _utc(window[1])), decisions)
    return report.step(
        rate=rate,
        accounts=accounts,
        window=window,
        samples=samples,
        data=data,
        decisions=decisions,
        series=series,
        counts=counts,
        drained=drained,
        rules=_rule_ids(),
        judge_coarse=plan.duration_s >= 3 * stack.settings.checkpoint_interval_s,
    )


def _stack_env(plan: BenchPlan) -> dict[str, str]:
    """The bench's stack settings. The rules job checkpoints at the configured interval, as it
    does in production: its lag is read from its sources' metrics (probes.py), not from the
    offsets it commits at each checkpoint (the bench used to checkpoint every 10 s for those)."""
    return dict(plan.stack_env)


def _sample_until(
    until: float,
    offsets: probes.OffsetProbe,
    resources: probes.ResourceProbe,
    samples: list[probes.ProgressSample],
    progress: Progress,
) -> None:
    while time.time() < until:
        tick = time.time()
        sample = probes.sample(offsets, resources)
        samples.append(sample)
        progress.update(sample)
        time.sleep(max(0.0, SAMPLE_INTERVAL_S - (time.time() - tick)))


def _wait_for_traffic(
    generator: Any,
    offsets: probes.OffsetProbe,
    resources: probes.ResourceProbe,
    samples: list[probes.ProgressSample],
    progress: Progress,
    log: Path,
    timeout_s: float = 180,
) -> None:
    """Sample until the generator's first transactions reach Kafka (its start-up is not load).

    Watched on `labels`, which only the generator writes: `transactions` also receives the
    rules process's watermark heartbeats."""
    before = offsets.end_offset(topics.LABELS)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        _sample_until(time.time() + SAMPLE_INTERVAL_S, offsets, resources, samples, progress)
        if offsets.end_offset(topics.LABELS) > before:
            return
        if generator.poll() is not None:
            raise RuntimeError(f"the generator exited during start-up; see {log}")
    raise RuntimeError(f"the generator sent nothing for {timeout_s:.0f} s; see {log}")


def _drain(
    offsets: probes.OffsetProbe,
    resources: probes.ResourceProbe,
    samples: list[probes.ProgressSample],
    progress: Progress,
    timeout_s: float,
) -> bool:
    """Wait until every consumer has committed everything produced; True when they all did.

    "Everything produced" is the topic's end when the drain begins (the generator has
    stopped): the rules process keeps appending watermark heartbeats, so the end never stops
    moving and a consumer is never exactly at it. The rules job's position is what its sources
    have read (its metrics, about a second old); only where those are missing is it the
    offsets it commits at each checkpoint, a checkpoint interval late. Waiting for it too keeps
    a backlog from one step out of the next.
    """
    target = offsets.end_offset(topics.TRANSACTIONS)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        _sample_until(time.time() + SAMPLE_INTERVAL_S, offsets, resources, samples, progress)
        last = samples[-1]
        if probes.RULES_GROUP in last.committed and all(
            done >= target for done in last.committed.values()
        ):
            # alerts still in flight land within a couple of seconds of their transaction
            _sample_until(time.time() + 3, offsets, resources, samples, progress)
            return True
    return False


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc)


def _rule_ids() -> list[str]:
    from streamguard.rules.catalog import load_rules

    return [rule.rule_id for rule in load_rules()]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def stack_summary(stack: PrivateStack) -> dict[str, Any]:
    """The settings that shape the figures."""
    s = stack.settings
    return {
        "state_dir": str(s.state_path),
        "kafka_port": s.kafka_port,
        "pg_port": s.pg_port,
        "flink_ui_port": s.flink_ui_port,
        "transactions_partitions": s.transactions_partitions,
        "flink_parallelism": s.flink_parallelism,
        "flink_heap_mb": s.flink_heap_mb,
        "kafka_heap_mb": s.kafka_heap_mb,
        "watermark_delay_s": s.watermark_delay_s,
        "flink_watermark_interval_ms": s.flink_watermark_interval_ms,
        "flink_buffer_timeout_ms": s.flink_buffer_timeout_ms,
        "idle_timeout_s": s.idle_timeout_s,
        "checkpoint_interval_s": s.checkpoint_interval_s,
    }


def plan_summary(plan: BenchPlan, tail: float) -> dict[str, Any]:
    """The plan as JSON."""
    return {
        "rates": list(plan.rates),
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "tail_s": tail,
        "seed": plan.seed,
        "seeds": [plan.seed + index for index in range(len(plan.rates))],
        "limit_records": plan.limit_records if plan.limits else 0,
        "copy_rows": plan.copy_rows if plan.limits else 0,
    }
