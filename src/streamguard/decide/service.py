"""The decision service (`decide`): one process, from Kafka to PostgreSQL, exactly once.

It is put together from three parts, one a module:
- `consumer.py`, the Kafka adapter: the group, assignment at the stored offsets, polls and
  dead letters;
- `batches.py`, the use case: store a batch (fence → rows → decisions → offsets) in one
  database transaction, with no Kafka and an injected clock;
- `pipeline.py`, the threads: poll, COPY and commit overlapped, in order.
This module owns the connections, publishes decisions after each commit (publisher.py, an
outbox) and decides what a failure means.

Failures are labelled by streamguard.errors. A retryable one (PostgreSQL restarting, a lost
connection, a deadlock, a transient Kafka error, a refused delivery that may pass, a lost
partition) stops the pipeline, closes the connections (which rolls back the open batches),
reconnects with backoff and puts every assigned partition back at the offset stored in
PostgreSQL: nothing is lost, nothing doubled. A fatal one ends the process with exit code 2 and
says why.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamguard.config import Settings
from streamguard.decide.batches import GROUP_ID, BatchStore, OpenBatch, Partition
from streamguard.decide.consumer import INPUT_TOPICS, DecisionConsumer
from streamguard.decide.lists import ListCache
from streamguard.decide.parse import Batch
from streamguard.decide.pipeline import Pipeline
from streamguard.decide.publisher import DecisionPublisher
from streamguard.domain.policy import Thresholds
from streamguard.errors import (
    Backoff,
    FatalError,
    GaveUpError,
    Kind,
    classify,
    retry,
)
from streamguard.kafka.client import producer_config
from streamguard.kafka.copartition import (
    CopartitionError,
    check_copartitioned,
    partition_counts,
)
from streamguard.kafka.producer import Producer
from streamguard.store import decisions
from streamguard.store.db import connect_app

log = logging.getLogger(__name__)

__all__ = ["GROUP_ID", "INPUT_TOPICS", "DecisionService", "run"]


class DecisionService:
    """One decision instance: consumes transactions, alerts and labels, stores and decides them."""

    def __init__(self, settings: Settings, *, poll_timeout_s: float = 0.1) -> None:
        self.settings = settings
        self.stopping = False
        self.instance_id = settings.decide_instance_id
        self.retry_for_s = settings.decide_retry_for_s
        self.backoff = Backoff()
        self._failing_since: float | None = None  # the first failure since the last commit
        self._failures = 0
        self.conn, self.spare = self._retry("connecting to PostgreSQL", self._connect_pair)
        self.producer = Producer(producer_config(settings))
        self.publisher = DecisionPublisher(self.producer)
        self.batches = BatchStore(
            instance_id=self.instance_id,
            group_id=settings.decide_group,
            lists=ListCache(settings.list_refresh_s),
            thresholds=Thresholds(settings.decision_review_score, settings.decision_block_score),
        )
        self.kafka = DecisionConsumer(settings, self, self.producer, poll_timeout_s=poll_timeout_s)
        self.pipeline: Pipeline | None = None
        self.stored = 0
        self.decided = 0
        self.recoveries = 0

    def _connect(self) -> psycopg.Connection:
        return connect_app(self.settings, application_name=self.settings.decide_group)

    def _connect_pair(self) -> tuple[psycopg.Connection, psycopg.Connection]:
        # The second one lets one batch's COPY run while the one before is decided.
        return self._connect(), self._connect()

    def _retry(self, what: str, operation: Callable[[], Any]) -> Any:
        """streamguard.errors.retry within what is left of this failure's retry budget."""
        spent = 0.0 if self._failing_since is None else time.monotonic() - self._failing_since
        return retry(
            operation,
            what=what,
            budget_s=max(0.0, self.retry_for_s - spent),
            backoff=self.backoff,
            stopping=lambda: self.stopping,
        )

    # The Owner protocol of consumer.py: what a rebalance asks of the rest of the service.

    def drain(self) -> None:
        """Let the writer commit what is queued first; then the stored offsets are final."""
        if self.pipeline is not None:
            self.pipeline.drain()

    def claim(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Claim the partitions and read their offsets.

        On a connection of its own: the pipeline's two may be mid-batch (or broken, when this
        runs inside a rebalance during an outage).
        """

        def claim() -> tuple[dict[Partition, int], dict[Partition, int]]:
            with self._connect() as conn, conn.transaction():
                return self.batches.claim(conn, partitions)

        self.batches.claimed, stored = self._retry("claiming the partitions", claim)
        return stored

    def release(self) -> None:
        """Forget every claim: the partitions were revoked."""
        self.batches.claimed = {}

    def owns(self, partition: Partition) -> bool:
        """True while this instance holds the partition's claim."""
        return partition in self.batches.claimed

    def run(self) -> None:
        """Resend what a crash left unpublished, then loop until SIGTERM or SIGINT."""
        self._install_signals()
        # The writers make a dozen round trips to PostgreSQL per batch, and after each one they
        # need the GIL back from the parsing thread, which by default keeps it up to 5 ms.
        sys.setswitchinterval(self.settings.decide_gil_switch_ms / 1000)
        try:
            self._retry("resending unpublished decisions", self._resend)
            self.kafka.subscribe()
            while not self.stopping:
                failure = self._run_pipeline()
                if failure is None:
                    break
                try:
                    self._recover(failure)
                except GaveUpError:
                    if not self.stopping:
                        raise
        finally:
            self.close()

    def _run_pipeline(self) -> BaseException | None:
        """Poll into the copier and writer threads until stopped or a stage fails; the failure."""
        pipeline = Pipeline((self.conn, self.spare), begin=self.batches.begin, finish=self.finish)
        self.pipeline = pipeline
        pipeline.start()
        last_put = time.monotonic()
        try:
            while not self.stopping and pipeline.failure is None:
                batch = self.kafka.poll_batch()
                if batch is None and time.monotonic() - last_put < 1.0:
                    continue
                pipeline.put(batch or Batch())  # an empty one lets the writer note acks
                last_put = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - from Kafka or a rebalance; labelled by _recover
            pipeline.failure = exc
        finally:
            pipeline.stop()
        return pipeline.failure

    def _recover(self, failure: BaseException) -> None:
        """After a retryable failure: roll back, reconnect, resume from the stored offsets.

        Closing the connections rolls back every batch left open; the batches polled but not
        committed are dropped, and each assigned partition is put back at its stored offset, so
        they are read again. Decisions committed but not yet acknowledged are sent again.
        """
        label = classify(failure)
        if label.kind is Kind.FATAL:
            raise FatalError(label.reason) from failure
        if label.kind is not Kind.RETRYABLE:
            raise failure
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        self._failures += 1
        if now - self._failing_since > self.retry_for_s:
            raise GaveUpError(f"failing for {now - self._failing_since:.0f} s: {label.reason}")
        delay = self.backoff.delay_s(self._failures)
        log.warning(
            "%s; rolling back, resuming from the offsets in PostgreSQL in %.1f s",
            label.reason,
            delay,
        )
        self._close_connections()
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(0.05)
        self.conn, self.spare = self._retry("reconnecting to PostgreSQL", self._connect_pair)
        self._retry("resending unpublished decisions", self._resend)
        self._retry("resuming the assigned partitions", self.kafka.resume)
        self.recoveries += 1
        log.info("recovered (%d so far): consuming again", self.recoveries)

    def _resend(self) -> None:
        resent = self.publisher.resend_unpublished(self.conn)
        if resent:
            log.info("resent %d committed decisions that Kafka had not acknowledged", resent)

    def _close_connections(self) -> None:
        for conn in (self.conn, self.spare):
            with contextlib.suppress(Exception):  # already broken, most likely
                conn.close()

    def step(self) -> int:
        """Poll once and handle what came, in this thread; return the number of messages."""
        batch = self.kafka.poll_batch()
        self.handle(batch or Batch())
        return batch.size if batch else 0

    def handle(self, batch: Batch) -> None:
        """Store and decide one batch in this thread, then publish its decisions."""
        self.finish(self.batches.begin(batch, self.conn))

    def finish(self, opened: OpenBatch) -> None:
        """Store and decide the rest of the batch, commit, then publish what it decided."""
        acknowledged = self.publisher.take_acknowledged()
        try:
            with opened.transaction:
                stored = self.batches.store(
                    opened.batch, opened.conn, copied=opened.copied, acknowledged=acknowledged
                )
        except BaseException:
            self.publisher.give_back(acknowledged)  # not marked: the next batch marks them
            raise
        self._failing_since, self._failures = None, 0
        self.stored += stored.inserted
        self.decided += len(stored.rows)
        self.publisher.publish(stored.rows)
        self.kafka.dead_letter(opened.batch.dead)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            if self.stopping:  # a second Ctrl+C: give up waiting
                signal.signal(signum, signal.SIG_DFL)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def close(self) -> None:
        """Flush what is in flight, note what Kafka acknowledged, leave the group, disconnect."""
        try:
            self.producer.flush(10)
        except KafkaException as exc:  # what was refused stays unmarked: resent at the next start
            log.warning("decisions not delivered before stopping: %s", exc)
        acknowledged = self.publisher.take_acknowledged()
        if acknowledged and not self.conn.closed:
            with contextlib.suppress(psycopg.Error), self.conn.transaction():
                decisions.mark_published(self.conn, acknowledged)  # else sent again next start
        self.kafka.close()
        self._close_connections()


def run(settings: Settings) -> None:
    """Entry point of the decision service process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    started = time.monotonic()
    # Refused before joining the group: on unequal counts an account's alerts could be decided
    # by an instance that never sees its transactions (kafka/copartition.py).
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    try:
        check_copartitioned(partition_counts(admin.list_topics(timeout=30)))
    except CopartitionError as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
    try:
        service = DecisionService(settings)
        log.info(
            "decide consuming %s as %s, instance %s",
            ", ".join(INPUT_TOPICS),
            settings.decide_group,
            settings.decide_instance_id,
        )
        service.run()
    except GaveUpError as exc:
        log.error("stopping: %s", exc)
        raise SystemExit(1) from exc
    except Exception as exc:
        label = classify(exc)
        if label.kind is not Kind.FATAL:
            raise
        log.error("stopping on a fatal error, not retried (an operator must fix it): %s", exc)
        raise SystemExit(2) from exc
    log.info(
        "decide stopped after %.0f s, %d new transactions, %d decision versions",
        time.monotonic() - started,
        service.stored,
        service.decided,
    )
