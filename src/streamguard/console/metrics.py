"""`/metrics` in Prometheus' text format, read from PostgreSQL and the pipeline monitor.

- `streamguard_transactions_inserted_total`: rows PostgreSQL's statistics counted into the
  ledger (tx/s is Prometheus' `rate()` of it); `streamguard_alerts_total{rule_id}`: stored
  alerts by rule; `streamguard_decisions{action}`: decisions by their current action.
- `streamguard_decision_versions_total{action}` and the histogram
  `streamguard_decision_latency_seconds` (the trigger's Kafka append to the decision's commit)
  count the decision versions committed since the console started: each scrape reads only the
  `decision_history` rows after the last id it saw.
- `streamguard_consumer_lag{group,topic,partition}` and `streamguard_component_up{component}`
  come from the pipeline monitor's cached snapshot.

A scrape reads at most once per `MIN_INTERVAL_S`; more scrapers share the result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamguard.config import Settings
from streamguard.console.monitor import PipelineMonitor
from streamguard.domain.pipeline import Health
from streamguard.store import metrics_reads
from streamguard.store.db import connect_console

disable_created_metrics()  # the *_created series only double what a scrape says

MIN_INTERVAL_S = 2.0
#: Decision latency buckets, seconds: the fast path is tens of ms, windowed rules seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ConsoleMetrics(Collector):
    """The console's registry: incremental counters plus gauges read at scrape time."""

    def __init__(self, settings: Settings, monitor: PipelineMonitor) -> None:
        self.settings = settings
        self.monitor = monitor
        self.registry = CollectorRegistry(auto_describe=False)
        self.versions = Counter(
            "streamguard_decision_versions",
            "Decision versions committed since the console started, by action",
            ["action"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "streamguard_decision_latency_seconds",
            "From the trigger's Kafka append to the decision version's commit",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)
        self._last_id: int | None = None
        self._counts = metrics_reads.Counts(0, {}, {})
        self._read_at = 0.0
        self._lock = threading.Lock()

    def render(self) -> bytes:
        """The text exposition, refreshed from PostgreSQL when older than MIN_INTERVAL_S."""
        with self._lock:
            if time.monotonic() - self._read_at >= MIN_INTERVAL_S:
                self._refresh()
                self._read_at = time.monotonic()
            return generate_latest(self.registry)

    def _refresh(self) -> None:
        try:
            with connect_console(self.settings, autocommit=True) as conn:
                self._counts = metrics_reads.counts(conn)
                self._observe_new_versions(conn)
        except psycopg.Error:
            self._counts = metrics_reads.Counts(None, {}, {})

    def _observe_new_versions(self, conn: psycopg.Connection) -> None:
        if self._last_id is None:  # counters start at the console's start, as Prometheus expects
            self._last_id = metrics_reads.newest_version_id(conn)
            return
        while True:
            rows = metrics_reads.versions_after(conn, self._last_id)
            for version_id, action, latency_s in rows:
                self.versions.labels(action).inc()
                if latency_s is not None:
                    self.latency.observe(max(0.0, latency_s))
                self._last_id = version_id
            if len(rows) < metrics_reads.VERSIONS_PAGE:
                return

    def collect(self) -> Iterator[Metric]:
        """The gauges and counters read at the last refresh (called by generate_latest)."""
        counts = self._counts
        if counts.transactions_inserted is not None:
            yield CounterMetricFamily(
                "streamguard_transactions_inserted",
                "Transactions stored in the ledger (PostgreSQL's insert counter)",
                value=counts.transactions_inserted,
            )
        alerts = CounterMetricFamily(
            "streamguard_alerts", "Stored alerts by rule", labels=["rule_id"]
        )
        for rule_id, count in sorted(counts.alerts_by_rule.items()):
            alerts.add_metric([rule_id], count)
        yield alerts
        decisions = GaugeMetricFamily(
            "streamguard_decisions", "Decisions by their current action", labels=["action"]
        )
        for action, count in sorted(counts.decisions_by_action.items()):
            decisions.add_metric([action], count)
        yield decisions
        yield from self._pipeline()

    def _pipeline(self) -> Iterator[Metric]:
        health = self.monitor.health
        up = GaugeMetricFamily(
            "streamguard_component_up", "1 when the component answers", labels=["component"]
        )
        up.add_metric(["kafka"], 1.0 if health.kafka is Health.UP else 0.0)
        up.add_metric(["flink"], 1.0 if health.flink is Health.UP else 0.0)
        yield up
        lag = GaugeMetricFamily(
            "streamguard_consumer_lag",
            "Messages appended but not yet consumed, per consumer group and partition",
            labels=["group", "topic", "partition"],
        )
        for group in self.monitor.snapshot().groups:
            for row in group.partitions:
                if row.lag is not None:
                    lag.add_metric([group.group_id, row.topic, str(row.partition)], row.lag)
        yield lag
