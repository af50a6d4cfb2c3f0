"""The benchmark's JSON report: each step's figures, the raw limits, ratios and the targets.

Pure: it turns samples and what was read back from PostgreSQL into numbers, without I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from streamguard.bench import metrics, quality
from streamguard.bench.collect import STAGES, Collected
from streamguard.bench.probes import MACHINE, OUTSIDE, RULES_GROUP, ProgressSample, as_dict

REPORT_VERSION = 1
TARGET_SUSTAINED_PER_S = 20_000
TARGET_P99_RATE = 5_000
TARGET_P99_MS = 1_000.0
TARGET_RECALL_SCENARIOS = ("high_amount", "velocity_burst", "card_testing")
#: Recall by transaction that a scenario must reach, where the issue sets one.
TARGET_TRANSACTION_RECALL = {"velocity_burst": 0.95}
TARGET_CPU_RATE = 20_000
TARGET_CPU_US_PER_TX = 100.0
#: Not parts of the pipeline: the load it is offered, and the machine-wide figures.
NOT_PIPELINE = frozenset({"generator", MACHINE, OUTSIDE})


def value_at(samples: Sequence[ProgressSample], at_s: float, field: str = "produced") -> float:
    """A counter's value at a moment, interpolated between the samples around it."""
    before = [s for s in samples if s.at_s <= at_s]
    after = [s for s in samples if s.at_s >= at_s]
    if not before:
        return float(getattr(after[0], field))
    if not after:
        return float(getattr(before[-1], field))
    a, b = before[-1], after[0]
    if b.at_s == a.at_s:
        return float(getattr(a, field))
    share = (at_s - a.at_s) / (b.at_s - a.at_s)
    return getattr(a, field) + (getattr(b, field) - getattr(a, field)) * share


def lag_points(
    samples: Sequence[ProgressSample], group: str, start_s: float, coarse: bool
) -> list[tuple[float, float]]:
    """(seconds into the window, lag) of a group; for a group that commits only at
    checkpoints, just the samples where a new commit shows, so the saw-tooth between
    commits does not pass for a trend."""
    points = []
    previous: int | None = None
    for sample in samples:
        done = sample.committed.get(group)
        if done is None:
            continue
        if not coarse or (previous is not None and done != previous):
            points.append((sample.at_s - start_s, float(max(0, sample.produced - done))))
        previous = done
    return points


def lag_trends(
    samples: Sequence[ProgressSample], window: tuple[float, float], offered_per_s: float
) -> dict[str, dict[str, Any]]:
    """Each consumer group's lag over the window, and whether it kept up."""
    inside = [s for s in samples if window[0] <= s.at_s <= window[1]]
    groups = sorted({g for s in inside for g in s.committed})
    result = {}
    for group in groups:
        considered, coarse = inside, False
        if group == RULES_GROUP:
            # The rules job's position from its metrics where it has one (a REST call that
            # timed out under load leaves a sample without it, and that sample is skipped);
            # only a window with none falls back to the checkpointed offsets, coarse.
            live = [s for s in inside if s.rules_live]
            considered, coarse = (live, False) if live else (inside, True)
        trend = metrics.lag_trend(lag_points(considered, group, window[0], coarse), offered_per_s)
        if trend is not None:
            result[group] = {
                "growth_per_s": round(trend.growth_per_s, 1),
                "start": int(trend.start),
                "end": int(trend.end),
                "max": int(trend.max),
                "sustained": trend.sustained,
                "coarse": coarse,
            }
    return result


def resources(
    samples: Sequence[ProgressSample], window: tuple[float, float]
) -> dict[str, dict[str, float]]:
    """Mean and peak CPU and RSS per component over the window."""
    inside = [s for s in samples if window[0] <= s.at_s <= window[1]]
    names = sorted({name for s in inside for name in s.resources})
    result = {}
    for name in names:
        use = metrics.resource_use([s.resources[name] for s in inside if name in s.resources])
        if use is not None:
            result[name] = {k: round(v, 1) for k, v in use.__dict__.items()}
    return result


def cpu_per_tx(use: dict[str, dict[str, float]], offered_per_s: float) -> dict[str, float]:
    """Each component's CPU per transaction in µs (100% of a core for a second is 10^6 µs),
    and the pipeline's: every component but the generator and the machine-wide figures."""
    if offered_per_s <= 0:
        return {}
    per_tx = {
        name: round(figures["cpu_mean_pct"] * 10_000 / offered_per_s, 1)
        for name, figures in use.items()
    }
    per_tx["pipeline"] = round(
        sum(us for name, us in per_tx.items() if name not in NOT_PIPELINE), 1
    )
    return per_tx


#: A generator that delivers less than this share of its target rate is itself the limit.
GENERATOR_SHORTFALL = 0.95


def limited_by(rate: int, offered_per_s: float, lags: dict[str, dict[str, Any]]) -> list[str]:
    """Which stages fell behind: the generator short of its rate, consumers whose lag grew."""
    found = []
    if rate and offered_per_s < GENERATOR_SHORTFALL * rate:
        found.append(f"generator ({offered_per_s:,.0f} of {rate:,} tx/s)")
    for group, trend in lags.items():
        if not trend["sustained"]:
            found.append(f"{group} (lag +{trend['growth_per_s']:,.0f}/s)")
    return found


def rules_job(samples: Sequence[ProgressSample]) -> dict[str, Any]:
    """How the Flink rules job fared during the step: restarts, and states seen."""
    restarts = [s.rules_restarts for s in samples if s.rules_restarts is not None]
    states = sorted({s.rules_state or "NO ANSWER" for s in samples})
    return {
        "restarts": (max(restarts) - min(restarts)) if restarts else None,
        "states_seen": states,
        "unanswered_samples": sum(1 for s in samples if s.rules_state is None),
    }


def latencies(data: Collected) -> dict[str, Any]:
    """Each stage's summary, with what it measures, and each rule's alert latency."""
    described = {name: what for name, _, what in STAGES}
    stages = {}
    for name, values in data.latencies.items():
        summary = metrics.summarize(values)
        stages[name] = {
            "measures": described[name],
            **(summary.as_dict() if summary else {"count": 0}),
        }
    per_rule = {}
    for rule, values in sorted(data.rule_latencies.items()):
        summary = metrics.summarize(values)
        if summary:
            per_rule[rule] = summary.as_dict()
    return {"stages": stages, "rule_alert_by_rule": per_rule}


def time_series(
    per_second: dict[str, dict[int, int]], samples: Sequence[ProgressSample]
) -> dict[str, Any]:
    """Per-second counts and the sampled lags, for the plot."""
    if not samples:
        return {}
    start = int(samples[0].at_s)
    end = int(samples[-1].at_s) + 1
    counts = {
        name: [by_second.get(second, 0) for second in range(start, end)]
        for name, by_second in per_second.items()
    }
    return {"start_s": start, "per_second": counts, "samples": [as_dict(s) for s in samples]}


def step(
    *,
    rate: int,
    accounts: int | None = None,
    window: tuple[float, float],
    samples: Sequence[ProgressSample],
    data: Collected,
    decisions: bool,
    series: dict[str, dict[int, int]],
    counts: dict[str, int],
    drained: bool,
    rules: Sequence[str],
    judge_coarse: bool = True,
) -> dict[str, Any]:
    """All the figures of one load step.

    The rules job's lag is read from its metrics; where they were missing it was known only at
    its checkpoints, and `judge_coarse` says whether the window is long enough (several
    checkpoints) for that lag's trend to count.
    """
    duration = window[1] - window[0]
    produced = value_at(samples, window[1]) - value_at(samples, window[0])
    offered = metrics.rate_per_s(int(produced), duration)
    lags = lag_trends(samples, window, offered)
    judged = [g for g, trend in lags.items() if judge_coarse or not trend["coarse"]]
    use = resources(samples, window)
    rows, card_tests = quality.judge_card_tests(data.interesting, data.card_charges, window)
    outcomes = quality.outcomes_from(rows, data.labels, data.alerts, data.actions)
    return {
        "rate_target": rate,
        "accounts": accounts,
        "window": {"start_s": round(window[0], 3), "end_s": round(window[1], 3)},
        "throughput": {
            "offered_per_s": round(offered, 1),
            "stored_per_s": round(counts["stored"] / duration, 1),
            "decided_per_s": _per_s(counts.get("decided"), duration),
            "decisions_per_s": _per_s(counts.get("decisions"), duration),
            "sustained": bool(judged) and all(lags[g]["sustained"] for g in judged) and drained,
            "drained": drained,
            "limited_by": limited_by(rate, offered, lags),
            "lag": lags,
        },
        "rules_job": rules_job(samples),
        "transactions_in_window": data.transactions,
        "decisions_in_window": data.decided if decisions else None,
        "latency_ms": latencies(data),
        "quality": {
            "labelled_fraud": sum(o.is_fraud for o in outcomes),
            "card_tests": card_tests,
            **quality.detection_quality(outcomes, rules, data.quiet_legit),
        },
        "resources": use,
        "cpu_us_per_tx": cpu_per_tx(use, offered),
        "series": time_series(series, samples),
    }


def _per_s(count: int | None, seconds: float) -> float | None:
    return None if count is None else round(metrics.rate_per_s(count, seconds), 1)


def vs_limits(stored_per_s: float, limits: dict[str, Any]) -> dict[str, float | None]:
    """The pipeline's stored rate as a share of each raw limit."""

    def limit(name: str, key: str) -> float | None:
        value = limits.get(name, {}).get(key)
        return float(value) if value else None

    return {
        "kafka_produce": _r(metrics.ratio(stored_per_s, limit("kafka_produce", "records_per_s"))),
        "kafka_consume": _r(
            metrics.ratio(stored_per_s, limit("kafka_consume", "fetch_records_per_s"))
        ),
        "postgres_copy": _r(metrics.ratio(stored_per_s, limit("postgres_copy", "rows_per_s"))),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def targets(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three targets, each with the figure that decides it."""
    sustained = [s["throughput"]["stored_per_s"] for s in steps if s["throughput"]["sustained"]]
    best = max(sustained, default=None)
    at_rate = [s for s in steps if s["rate_target"] == TARGET_P99_RATE]
    p99 = p99_alerted = None
    if at_rate:
        stages = at_rate[0]["latency_ms"]["stages"]
        p99 = stages.get("total_to_decision", {}).get("p99_ms")
        p99_alerted = stages.get("total_to_decision_alerted", {}).get("p99_ms")
    recalls = {}
    # recall needs every alert in: judge it on the steps whose rules job caught up
    complete = [s for s in steps if s["throughput"]["drained"]] or list(steps)
    for scenario in TARGET_RECALL_SCENARIOS:
        found = [
            s["quality"]["per_scenario"][scenario]
            for s in complete
            if scenario in s["quality"]["per_scenario"]
        ]
        worst_tx = min((f["recall"] for f in found), default=None)
        worst_incident = min((f["incident_recall"] for f in found), default=None)
        wanted_tx = TARGET_TRANSACTION_RECALL.get(scenario)
        met = None
        if found:
            met = worst_incident == 1.0 and (
                wanted_tx is None or (worst_tx is not None and worst_tx >= wanted_tx)
            )
        recalls[scenario] = {
            "transaction_recall": worst_tx,
            "transaction_recall_target": wanted_tx,
            "incident_recall": worst_incident,
            "met": met,
            "judged_on_rates": [s["rate_target"] for s in complete],
        }
    return {
        "sustained_throughput": {
            "target_per_s": TARGET_SUSTAINED_PER_S,
            "best_sustained_stored_per_s": best,
            "met": best is not None and best >= TARGET_SUSTAINED_PER_S,
        },
        "p99_event_to_decision_at_5000": {
            "target_ms": TARGET_P99_MS,
            "p99_ms": p99,
            "met": p99 is not None and p99 < TARGET_P99_MS,
            "p99_ms_alerted_only": p99_alerted,
            "met_alerted_only": p99_alerted is not None and p99_alerted < TARGET_P99_MS,
        },
        "recall_deterministic_scenarios": recalls,
        "cpu_per_tx_at_20000": cpu_target(steps),
    }


def cpu_target(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's CPU per transaction at the target rate, the generator left out.

    The figure is per offered transaction, so it is only a cost where the step kept up: a
    pipeline that fell behind spent that CPU on fewer transactions, and the target is not met.
    """
    at_rate = [s for s in steps if s["rate_target"] == TARGET_CPU_RATE]
    us = at_rate[0].get("cpu_us_per_tx", {}).get("pipeline") if at_rate else None
    kept_up = bool(at_rate) and at_rate[0]["throughput"]["sustained"]
    return {
        "target_us_per_tx": TARGET_CPU_US_PER_TX,
        "pipeline_us_per_tx": us,
        "kept_up": kept_up,
        "met": None if us is None else kept_up and us < TARGET_CPU_US_PER_TX,
    }


def assemble(
    *,
    started: datetime,
    machine: dict[str, Any],
    settings: dict[str, Any],
    plan: dict[str, Any],
    limits: dict[str, Any],
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole report."""
    for s in steps:
        s["vs_limits"] = vs_limits(s["throughput"]["stored_per_s"], limits)
    return {
        "report_version": REPORT_VERSION,
        "started_at": started.isoformat(),
        "machine": machine,
        "settings": settings,
        "plan": plan,
        "limits": limits,
        "targets": targets(steps),
        "steps": steps,
    }
