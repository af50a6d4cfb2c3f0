"""`streamguard backtest`: the live catalog and a candidate over the same history, compared.

The history is the `transactions` topic, read between two append timestamps by one bounded
Flink job for both catalogs (`backtest/alerts.py`), or the ledger's rows of the same span once
the topic's retention has passed it (`backtest/history.py`). Each catalog then decides with the live
decision code (`backtest/verdicts.py`) over a read-only connection, and the two are compared
(`domain/backtest.py`). Nothing is written to a live table or topic: the results are values,
printed and saved by the caller.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from streamguard.backtest import history
from streamguard.backtest.alerts import Catalog, catalog_alerts, columns_of
from streamguard.backtest.lists import ListTimeline
from streamguard.backtest.merchants import MerchantClock
from streamguard.backtest.verdicts import decide_all
from streamguard.config import Settings
from streamguard.domain import backtest as compare
from streamguard.domain.models import FraudAlert, to_epoch_ms
from streamguard.domain.policy import Thresholds
from streamguard.rules.catalog import RuleError, load_rules
from streamguard.rules.engine import Source
from streamguard.store import backtest_reads as reads

LIVE, CANDIDATE = "live", "candidate"
log = logging.getLogger(__name__)


class BacktestError(RuntimeError):
    """The backtest cannot run as asked (nothing stored in the period, ...)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in event time, timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the period's bounds need a time zone")
        if self.end <= self.start:
            raise ValueError(f"--to ({self.end}) must be after --from ({self.start})")

    def holds(self, alert: FraudAlert) -> bool:
        """Whether the alerted transaction's event time is inside the period."""
        return to_epoch_ms(self.start) <= alert.ts_ms < to_epoch_ms(self.end)


def catalogs(
    settings: Settings, rules_dir: Path | None, overrides: dict[str, str]
) -> tuple[Catalog, Catalog]:
    """The live catalog and the candidate (another folder and/or overrides), both checked."""
    live = Catalog(LIVE, load_rules(), dict(settings.rule_params))
    rules = load_rules(rules_dir) if rules_dir is not None else live.rules
    candidate = Catalog(CANDIDATE, rules, {**settings.rule_params, **overrides})
    live.check()
    candidate.check()
    if rules_dir is not None:
        _compile(settings, candidate)
    return live, candidate


def _compile(settings: Settings, catalog: Catalog) -> None:
    """Plan every rule of a candidate folder on the engine; the first error names its file."""
    from streamguard.rules.validate import validate

    planned = settings.model_copy(update={"rule_params": catalog.overrides})
    failed = [verdict for verdict in validate(planned, catalog.rules) if verdict.error]
    if failed:
        raise RuleError("\n".join(_named(v.rule.path.name, str(v.error)) for v in failed))


def _named(name: str, error: str) -> str:
    return error if error.startswith(name) else f"{name}: {error}"


def backtest(
    settings: Settings,
    period: Period,
    live: Catalog,
    candidate: Catalog,
    *,
    warmup: timedelta = timedelta(hours=1),
    history_from: str = history.AUTO,
    db_url: str | None = None,
) -> dict[str, Any]:
    """Replay, decide and compare; the result as a JSON-ready dict. `history_from` is
    `topic`, `ledger`, or `auto`: the topic while it holds the period, else the ledger.

    `db_url` is the role that reads (the owner's by default; the console's worker passes its
    read-only `streamguard_backtest`)."""
    began = time.monotonic()
    url = db_url or settings.db_url
    with psycopg.connect(url) as conn:
        span = reads.append_span(conn, period.start - warmup, period.end)
    if span is None:
        raise BacktestError(
            f"no stored transaction has an event time from {period.start} to {period.end}"
        )
    used = history_from if history_from != history.AUTO else _history_of(settings, span[0])
    stages: dict[str, float] = {}
    found = _replay(settings, url, used, span, [live, candidate], stages)
    replayed_s = time.monotonic() - began
    alerts = {name: [a for a in found[name] if period.holds(a)] for name in found}
    thresholds = Thresholds(settings.decision_review_score, settings.decision_block_score)
    with psycopg.connect(url) as conn:
        conn.read_only = True
        changes = reads.list_changes_until(conn, period.end)
        timeline = ListTimeline(changes)
        listed = reads.transactions_naming(
            conn,
            period.start,
            period.end,
            accounts=timeline.ever_listed("ACCOUNT"),
            merchants=timeline.ever_listed("MERCHANT"),
            devices=timeline.ever_listed("DEVICE"),
        )
        brought = {a.transaction_id for found in alerts.values() for a in found} | set(listed)
        rank = reads.merchant_rank_in(conn, period.start, period.end, brought)
        before = reads.merchant_counts_before(conn, period.start, {m for m, _ in rank.values()})
        clock = MerchantClock(before, rank)
        runs = {
            name: compare.CatalogRun(
                alerts=_rules_by_tx(alerts[name]),
                actions=decide_all(
                    conn,
                    alerts[name],
                    listed,
                    start=period.start,
                    timeline=ListTimeline(changes),
                    merchants=clock,
                    thresholds=thresholds,
                ),
            )
            for name in (LIVE, CANDIDATE)
        }
        decided = time.monotonic()
        total = reads.count_transactions(conn, period.start, period.end)
        flagged = {tx for run in runs.values() for tx in (*run.alerts, *run.actions)}
        truth = compare.truth_from(
            reads.labels_of(conn, flagged), reads.resolutions_of(conn, flagged)
        )
        truth.update(dict.fromkeys(reads.fraud_in(conn, period.start, period.end), True))
        times = reads.event_times(conn, flagged)
    zone = ZoneInfo(settings.local_time_zone)
    days = {tx: at.astimezone(zone).date() for tx, at in times.items()}
    order = sorted(times, key=lambda tx: (times[tx], tx))
    changed = compare.changes(runs[LIVE], runs[CANDIDATE], order)
    return {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "history": used,
        "transactions": total,
        "known_fraud": sum(truth.values()),
        "catalogs": {name: _summary(run, total, truth, days) for name, run in runs.items()},
        "changes": [
            {**vars(change), "event_time": times[change.transaction_id].isoformat()}
            for change in changed
            if change.transaction_id in times
        ],
        "seconds": {
            "replay": round(replayed_s, 2),
            **{name: round(s, 2) for name, s in stages.items()},
            "decide": round(decided - began - replayed_s, 2),
            "compare": round(time.monotonic() - decided, 2),
            "total": round(time.monotonic() - began, 2),
        },
        "replay_tx_per_s": round(total / replayed_s) if replayed_s else None,
    }


def _history_of(settings: Settings, first: datetime) -> str:
    """The topic while it holds everything appended since `first`, else the ledger."""
    from confluent_kafka import KafkaException

    try:
        held = history.topic_holds(settings, to_epoch_ms(first))
    except KafkaException as exc:
        log.warning("reading the history from the ledger: Kafka does not answer (%s)", exc)
        return history.LEDGER
    if not held:
        log.info("reading the history from the ledger: the topic's retention has passed %s", first)
    return history.TOPIC if held else history.LEDGER


def _replay(
    settings: Settings,
    db_url: str,
    used: str,
    span: tuple[datetime, datetime],
    catalogs: list[Catalog],
    stages: dict[str, float],
) -> dict[str, list[FraudAlert]]:
    """The catalogs' alerts over the span of append times, read from the topic or the ledger."""
    if used == history.TOPIC:
        # By append time: from the first appended transaction of the warm-up to the last of
        # the period (the ledger keeps each one's append time), 1 ms past it included.
        group = f"streamguard-backtest-{uuid.uuid4().hex[:8]}"
        start_ms, end_ms = to_epoch_ms(span[0]), to_epoch_ms(span[1]) + 1
        return catalog_alerts(
            settings,
            lambda: Source.kafka_between(settings, start_ms, end_ms, group),
            catalogs,
            stages,
        )
    with tempfile.TemporaryDirectory(prefix="streamguard-backtest-") as folder:
        path = Path(folder) / "history.jsonl"
        with psycopg.connect(db_url) as conn:
            conn.read_only = True
            history.export_ledger(conn, span[0], span[1], columns_of(catalogs), path)
        return catalog_alerts(settings, lambda: Source.ledger_file(path), catalogs, stages)


def _rules_by_tx(alerts: list[FraudAlert]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for alert in alerts:
        found.setdefault(alert.transaction_id, set()).add(alert.rule_id)
    return {tx: frozenset(rules) for tx, rules in found.items()}


def _summary(
    run: compare.CatalogRun, total: int, truth: dict[str, bool], days: dict[str, Any]
) -> dict[str, Any]:
    return {
        "alerts_per_rule": dict(sorted(compare.alerts_per_rule(run).items())),
        "actions": compare.actions_count(run, total),
        "quality": {
            "overall": compare.quality(run.cases(), truth).as_dict(),
            "per_rule": {
                rule: q.as_dict() for rule, q in compare.per_rule_quality(run, truth).items()
            },
        },
        "cases_per_day": compare.cases_per_day(run, days),
        "cases": {tx: run.actions[tx] for tx in sorted(run.cases())},
    }
