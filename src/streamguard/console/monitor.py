"""The pipeline as the console shows it: one cached snapshot for every browser and API caller.

A background loop checks Kafka and Flink every few seconds (one metadata call, one offsets
call, one REST call), which tells every page what is down and gives the messages/s samples.
The full snapshot (brokers, topics, groups, lags) is built on demand, at most once per
`TTL_S` whatever the number of callers, each call bounded by a short timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg

from streamguard.config import Settings
from streamguard.domain.pipeline import (
    Health,
    PartitionLag,
    TopicPartition,
    down_messages,
    flink_health,
    lags,
    rate_per_s,
    retention_text,
    total_lag,
)
from streamguard.kafka import topics as topic_names
from streamguard.kafka.admin import (
    DECIDE_GROUP,
    RULES_GROUP,
    Broker,
    KafkaAdmin,
    KafkaUnavailableError,
    Topic,
)
from streamguard.rules import rest
from streamguard.store import pipeline_reads
from streamguard.store.db import connect_console

log = logging.getLogger("streamguard.console")

TTL_S = 2.0
HEALTH_INTERVAL_S = 5.0
#: The messages/s of a topic are measured over about this span of samples.
RATE_SPAN_S = 30.0
#: What each consumer reads, so a partition it never read still shows.
DECIDE_TOPICS = frozenset({topic_names.TRANSACTIONS, topic_names.FRAUD_ALERTS, topic_names.LABELS})
RULES_TOPICS = frozenset({topic_names.TRANSACTIONS})


@dataclass(frozen=True)
class TopicRow:
    """A topic: partitions with their first and end offsets, messages/s, retention."""

    name: str
    partitions: list[tuple[int, int | None, int | None]]
    messages: int | None
    rate_per_s: float | None
    retention: str
    retention_bytes: int | None
    cleanup_policy: str | None


@dataclass(frozen=True)
class GroupRow:
    """A consumer and its lag per partition, saying where its offsets come from."""

    group_id: str
    consumer: str
    offsets_from: str
    state: str
    members: int | None
    partitions: list[PartitionLag]
    total_lag: int | None
    pending_records: int | None = None


@dataclass(frozen=True)
class HealthView:
    """Kafka's and Flink's state as of the last check."""

    kafka: Health = Health.UNKNOWN
    kafka_error: str | None = None
    flink: Health = Health.UNKNOWN
    flink_state: str | None = None
    flink_ui_url: str | None = None
    checked_at: datetime | None = None

    @property
    def down(self) -> list[str]:
        """The sentences every page shows while something is down."""
        return down_messages(self.kafka, self.flink, self.flink_state)


@dataclass(frozen=True)
class PipelineSnapshot:
    """Everything the pipeline page shows at one moment."""

    taken_at: datetime
    health: HealthView
    cluster_id: str | None
    brokers: list[Broker]
    topics: list[TopicRow]
    groups: list[GroupRow]
    dead_letter_reasons: list[tuple[str, int, datetime]]
    database_error: str | None = None
    kafka_groups: list[str] = field(default_factory=list)


class PipelineMonitor:
    """The one reader of Kafka and Flink for the whole console."""

    def __init__(self, settings: Settings, timeout_s: float = 1.5) -> None:
        self.settings = settings
        self.admin = KafkaAdmin(settings, timeout_s)
        self.timeout_s = timeout_s
        self.health = HealthView()
        self.samples: deque[tuple[float, dict[TopicPartition, int]]] = deque(maxlen=64)
        self._snapshot: tuple[float, PipelineSnapshot] | None = None
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        #: jobs whose Kafka sources publish no positions (this connector's do not): not asked again
        self._no_source_metrics: set[str] = set()

    def start(self) -> None:
        """Begin the health loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the health loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # noqa: BLE001 - the loop must outlive any one failed check
                log.exception("pipeline health check failed")
            await asyncio.sleep(HEALTH_INTERVAL_S)

    def check(self) -> HealthView:
        """Ask Kafka for its end offsets and Flink for its job; keep the result as the health."""
        kafka, error = Health.UP, None
        try:
            found = self.admin.topics(with_configs=False)
            ends = self.admin.offsets([(t.name, p) for t in found for p in t.partitions])
            self.samples.append((time.monotonic(), ends))
        except KafkaUnavailableError as exc:
            kafka, error = Health.DOWN, str(exc)
        flink_job = rest.job(self.settings, self.timeout_s)
        state = flink_job.state if flink_job else None
        self.health = HealthView(
            kafka,
            error,
            flink_health(state),
            state,
            flink_job.ui_url if flink_job else rest.base_url(self.settings),
            datetime.now(timezone.utc),
        )
        return self.health

    def snapshot(self) -> PipelineSnapshot:
        """The newest snapshot, rebuilt when older than TTL_S (one builder at a time)."""
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._snapshot[0] < TTL_S:
                return self._snapshot[1]
            built = self._build()
            self._snapshot = (time.monotonic(), built)
            return built

    def _build(self) -> PipelineSnapshot:
        # PostgreSQL's positions first, Kafka's end offsets after: a message appended in between
        # then shows as lag, never as a position past the end.
        stored, reasons, db_error = self._database()
        health = self.check()
        cluster_id: str | None = None
        brokers: list[Broker] = []
        found: list[Topic] = []
        groups_known: list[str] = []
        starts: dict[TopicPartition, int] = {}
        kafka_committed: dict[str, dict[TopicPartition, int]] = {}
        group_states: dict[str, tuple[str, int]] = {}
        if health.kafka is Health.UP:
            try:
                cluster_id, brokers = self.admin.brokers()
                found = self.admin.topics()
                starts = self.admin.offsets(
                    [(t.name, p) for t in found for p in t.partitions], latest=False
                )
                for group in self.admin.groups():
                    group_states[group.group_id] = (group.state, group.members)
                    groups_known.append(group.group_id)
                for group_id in {*groups_known, RULES_GROUP}:
                    kafka_committed[group_id] = self.admin.committed(group_id)
            except KafkaUnavailableError as exc:
                health = HealthView(
                    Health.DOWN,
                    str(exc),
                    health.flink,
                    health.flink_state,
                    health.flink_ui_url,
                    health.checked_at,
                )
        ends = self.samples[-1][1] if self.samples and health.kafka is Health.UP else {}
        topic_rows = [self._topic_row(t, starts, ends) for t in found]
        group_rows = self._groups(ends, stored, kafka_committed, group_states)
        return PipelineSnapshot(
            datetime.now(timezone.utc),
            health,
            cluster_id,
            brokers,
            topic_rows,
            group_rows,
            reasons,
            db_error,
            groups_known,
        )

    def _database(
        self,
    ) -> tuple[dict[str, dict[TopicPartition, int]], list[tuple[str, int, datetime]], str | None]:
        try:
            with connect_console(self.settings, autocommit=True) as conn:
                return (
                    pipeline_reads.stored_offsets(conn),
                    pipeline_reads.dead_letter_reasons(conn),
                    None,
                )
        except psycopg.Error as exc:
            return {}, [], f"PostgreSQL: {exc.__class__.__name__}"

    def _topic_row(
        self, topic: Topic, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> TopicRow:
        parts = [
            (p, starts.get((topic.name, p)), ends.get((topic.name, p))) for p in topic.partitions
        ]
        known = [high for _, _, high in parts if high is not None]
        return TopicRow(
            topic.name,
            parts,
            sum(known) if known else None,
            self._rate(topic.name),
            retention_text(topic.retention_ms),
            topic.retention_bytes,
            topic.cleanup_policy,
        )

    def _rate(self, topic: str) -> float | None:
        """messages/s of a topic over the samples of about the last RATE_SPAN_S."""
        if len(self.samples) < 2:
            return None
        newest_at, newest = self.samples[-1]
        older = next(
            ((at, ends) for at, ends in self.samples if newest_at - at <= RATE_SPAN_S),
            self.samples[-2],
        )
        if older[0] == newest_at:
            older = self.samples[-2]

        def total(ends: dict[TopicPartition, int]) -> int:
            return sum(v for (t, _), v in ends.items() if t == topic)

        rate = rate_per_s((older[0], total(older[1])), (newest_at, total(newest)))
        return round(rate, 1) if rate is not None else None

    def _groups(
        self,
        ends: dict[TopicPartition, int],
        stored: dict[str, dict[TopicPartition, int]],
        kafka_committed: dict[str, dict[TopicPartition, int]],
        states: dict[str, tuple[str, int]],
    ) -> list[GroupRow]:
        rows = []
        state, members = states.get(DECIDE_GROUP, ("—", None))
        decide = lags(ends, stored.get(DECIDE_GROUP, {}), DECIDE_TOPICS)
        rows.append(
            GroupRow(
                DECIDE_GROUP,
                "decision service",
                "PostgreSQL consumer_offsets",
                state,
                members,
                decide,
                total_lag(decide),
            )
        )
        rows.append(self._flink_row(ends, kafka_committed.get(RULES_GROUP, {}), states))
        for group_id, offsets in sorted(stored.items()):
            if group_id != DECIDE_GROUP:
                found = lags(ends, offsets)
                rows.append(
                    GroupRow(
                        group_id,
                        "other",
                        "PostgreSQL consumer_offsets",
                        "—",
                        None,
                        found,
                        total_lag(found),
                    )
                )
        for group_id, offsets in sorted(kafka_committed.items()):
            if group_id in (DECIDE_GROUP, RULES_GROUP):
                continue
            state, members = states.get(group_id, ("—", None))
            found = lags(ends, offsets)
            rows.append(
                GroupRow(
                    group_id,
                    "other",
                    "Kafka committed offsets",
                    state,
                    members,
                    found,
                    total_lag(found),
                )
            )
        return rows

    def _flink_row(
        self,
        ends: dict[TopicPartition, int],
        committed: dict[TopicPartition, int],
        states: dict[str, tuple[str, int]],
    ) -> GroupRow:
        flink_job = rest.job(self.settings, self.timeout_s) if self.health.flink_state else None
        progress = None
        if (
            flink_job is not None
            and flink_job.state == "RUNNING"
            and flink_job.jid not in self._no_source_metrics
        ):
            progress = rest.source_progress(self.settings, flink_job, self.timeout_s)
            if not progress.positions and progress.pending_records is None:
                self._no_source_metrics.add(flink_job.jid)
        if progress is not None and progress.positions:
            positions, source = progress.positions, "Flink REST (source reader's currentOffset)"
        else:
            positions, source = committed, "Kafka committed offsets (at each checkpoint)"
        found = lags(ends, positions, RULES_TOPICS)
        job_state = self.health.flink_state or "REST API not answering"
        return GroupRow(
            RULES_GROUP,
            "Flink rules job",
            source,
            job_state,
            states.get(RULES_GROUP, ("", None))[1],
            found,
            total_lag(found),
            progress.pending_records if progress else None,
        )
