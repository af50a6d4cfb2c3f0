"""The decision service: poll a batch, validate, store, decide, write it all with the offsets.

Offsets live in PostgreSQL (table consumer_offsets), written in the same database transaction as
the rows and decisions they produced, so a crash at any point neither loses nor doubles a row:
on (re)assignment each partition resumes from the offset stored with the last committed batch.
Decisions are then produced to `fraud_decisions` from that committed state (see publisher.py).
Messages that fail validation go to the dead-letter topic (reason in the headers) and the
dead_letters table; the loop goes on.

Failures are labelled by streamguard.errors. A retryable one (PostgreSQL restarting, a lost
connection, a deadlock, a transient Kafka error) stops the pipeline, closes the connections (which
rolls back the open batches), reconnects with backoff and puts every assigned partition back at
the offset stored in PostgreSQL: nothing is lost, nothing doubled. A fatal one ends the process
with exit code 2 and says why.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from streamguard.config import Settings
from streamguard.decide import decider
from streamguard.decide.lists import ListCache
from streamguard.decide.parse import Batch, split
from streamguard.decide.publisher import DecisionPublisher
from streamguard.domain.policy import Thresholds
from streamguard.errors import (
    Backoff,
    FatalError,
    FencedError,
    GaveUpError,
    Kind,
    classify,
    retry,
)
from streamguard.kafka import topics
from streamguard.kafka.client import consumer_config, producer_config
from streamguard.kafka.copartition import (
    CopartitionError,
    check_copartitioned,
    partition_counts,
)
from streamguard.store import decisions, ledger
from streamguard.store.db import connect_app

log = logging.getLogger(__name__)

GROUP_ID = "streamguard-ledger"
INPUT_TOPICS = (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS)


class OpenBatch(NamedTuple):
    """A batch whose database transaction is open; `copied`: its transactions are all in."""

    batch: Batch
    conn: psycopg.Connection
    transaction: contextlib.ExitStack
    copied: bool


class Stored(NamedTuple):
    """What one committed batch did."""

    rows: list[decisions.HistoryRow]
    inserted: int


class LedgerService:
    """Consumes transactions, alerts and labels into PostgreSQL and decides, exactly once."""

    def __init__(self, settings: Settings, *, poll_timeout_s: float = 0.1) -> None:
        self.settings = settings
        self.batch_size = settings.ledger_batch_size
        self.poll_timeout_s = poll_timeout_s
        self.linger_s = settings.ledger_linger_ms / 1000
        self.stopping = False
        self.instance_id = settings.ledger_instance_id
        # The partitions this instance claimed in PostgreSQL, with their generations (fencing).
        self._claimed: dict[tuple[str, int], int] = {}
        self._rebalances = 0
        self._stages_running = False
        self.retry_for_s = settings.ledger_retry_for_s
        self.backoff = Backoff()
        self._failing_since: float | None = None  # the first failure since the last commit
        self._failures = 0
        self.conn, self.spare = self._retry("connecting to PostgreSQL", self._connect_pair)
        self.consumer = Consumer(
            consumer_config(
                settings,
                GROUP_ID,
                **{"group.instance.id": settings.ledger_instance_id, "session.timeout.ms": 10_000},
            )
        )
        self.producer = Producer(producer_config(settings))
        self.publisher = DecisionPublisher(self.producer)
        self.lists = ListCache(settings.list_refresh_s)
        self.bounds = settings.event_time_bounds
        self.thresholds = Thresholds(settings.decision_review_score, settings.decision_block_score)
        self.stored = 0
        self.decided = 0
        self.recoveries = 0
        self._reset_pipeline()

    def _connect(self) -> psycopg.Connection:
        return connect_app(self.settings, application_name=GROUP_ID)

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

    def _reset_pipeline(self) -> None:
        """Fresh queues between the threads, both connections free, no failure."""
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._opened: queue.Queue[OpenBatch | None] = queue.Queue(maxsize=1)
        self._free: queue.Queue[psycopg.Connection] = queue.Queue()
        self._free.put(self.conn)
        self._free.put(self.spare)
        self._failure: BaseException | None = None

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Claim each partition and resume it from the offset stored with its last batch."""
        self._drain()
        self._rebalances += 1
        self._resume(partitions)
        log.info("assigned %d partitions, resuming from the offsets in PostgreSQL", len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the batches already queued (they still own their partitions), then let go.

        A batch that is too late (another instance claimed one of its partitions first) fails
        its ownership check and rolls back; what was polled but not queued is dropped (poll).
        """
        self._drain()
        self._rebalances += 1
        self._claimed = {}
        log.info("revoked %d partitions", len(partitions))

    def _drain(self) -> None:
        # Only while the threads run: once stopped (close() leaves the group) nothing is queued
        # but their end-of-work marker, which no one marks done.
        while self._stages_running and self._queue.unfinished_tasks and self._failure is None:
            time.sleep(0.01)  # the writer commits what is queued first; then the offsets are final

    def _resume(self, partitions: list[TopicPartition]) -> None:
        """Assign the partitions at the offsets PostgreSQL holds for them.

        Read on a connection of its own: the pipeline's two may be mid-batch (or broken, when
        this runs inside a rebalance during an outage).
        """

        keys = [(tp.topic, tp.partition) for tp in partitions]

        def claim() -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
            with self._connect() as conn, conn.transaction():
                claimed = ledger.claim_partitions(conn, GROUP_ID, self.instance_id, keys)
                return claimed, ledger.load_offsets(conn, GROUP_ID)

        self._claimed, stored = self._retry("claiming the partitions", claim)
        at = [
            TopicPartition(
                tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            )
            for tp in partitions
        ]
        self.consumer.assign(at)

    def run(self) -> None:
        """Resend what a crash left unpublished, then loop until SIGTERM or SIGINT.

        Three threads overlap the work. This one polls and validates batch N+2 while the copier
        COPYs batch N+1's transactions on one connection and the writer decides and commits
        batch N on the other (each PostgreSQL backend works in its own process meanwhile).
        Batches commit one at a time, in order, each with its offsets: still exactly once.
        """
        self._install_signals()
        # The writers make a dozen round trips to PostgreSQL per batch, and after each one they
        # need the GIL back from the parsing thread, which by default keeps it up to 5 ms.
        sys.setswitchinterval(self.settings.ledger_gil_switch_ms / 1000)
        try:
            self._retry("resending unpublished decisions", self._resend)
            self.consumer.subscribe(
                list(INPUT_TOPICS), on_assign=self._on_assign, on_revoke=self._on_revoke
            )
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
        self._reset_pipeline()
        stages = [
            threading.Thread(
                target=self._stage, args=(self._copy,), name="ledger-copier", daemon=True
            ),
            threading.Thread(
                target=self._stage, args=(self._commit,), name="ledger-writer", daemon=True
            ),
        ]
        for thread in stages:
            thread.start()
        self._stages_running = True
        last_put = time.monotonic()
        try:
            while not self.stopping and self._failure is None:
                batch = self._poll_batch()
                if batch is None and time.monotonic() - last_put < 1.0:
                    continue
                self._put(self._queue, batch or Batch())  # an empty one lets the writer note acks
                last_put = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - from Kafka or a rebalance; labelled by _recover
            self._failure = exc
        finally:
            self._put(self._queue, None)
            for thread in stages:
                thread.join()
            self._stages_running = False
        return self._failure

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
        self._retry(
            "resuming the assigned partitions", lambda: self._resume(self.consumer.assignment())
        )
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

    def _put(self, into: queue.Queue, item: object) -> None:
        while self._failure is None:
            try:
                into.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _take(self, source: queue.Queue) -> Any:
        while self._failure is None:
            try:
                return source.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def _stage(self, work: Callable[[], bool]) -> None:
        """Run one stage of the pipeline until it is told to stop or a stage fails."""
        try:
            while work():
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            if classify(exc).kind is Kind.RETRYABLE:
                log.warning("writing a batch failed: %s", classify(exc).reason)
            else:
                log.exception("writing a batch failed")
            self._failure = exc

    def _copy(self) -> bool:
        """Take the next batch and a free connection; open its transaction and COPY into it."""
        batch = self._take(self._queue)
        if batch is None:
            self._put(self._opened, None)
            return False
        conn = self._take(self._free)
        if conn is None:
            return False
        opened = self.begin(batch, conn)
        self._put(self._opened, opened)
        if not opened.copied:
            # Its rows go in by INSERT ... ON CONFLICT, which would wait on rows the next COPY
            # has not committed while that batch waits for this one: let this one commit first.
            while self._opened.unfinished_tasks and self._failure is None:
                time.sleep(0.001)
        return True

    def _commit(self) -> bool:
        """Finish and commit the oldest opened batch, then free its connection."""
        opened = self._take(self._opened)
        if opened is None:
            return False
        try:
            self.finish(opened)
        finally:
            self._free.put(opened.conn)
            self._opened.task_done()
            self._queue.task_done()
        return True

    def poll(self) -> list[Message]:
        """Wait for one message, then for up to a batch more during the linger.

        Across a rebalance, the messages of partitions this instance no longer holds are dropped
        (they are another instance's now, read from the offsets stored). Those of partitions it
        kept may come twice, from before and after the rebalance put them back at their stored
        offsets: storing is idempotent, so that costs only the repeat.
        """
        rebalances = self._rebalances
        first = self.consumer.consume(1, self.poll_timeout_s)
        if not first:
            return []
        messages = first + self.consumer.consume(self.batch_size - 1, self.linger_s)
        if self._rebalances == rebalances:
            return messages
        return [m for m in messages if (m.topic(), m.partition()) in self._claimed]

    def _poll_batch(self) -> Batch | None:
        messages = self.poll()
        usable = [m for m in messages if m.error() is None]
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                raise KafkaException(error)
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
        return split(usable, self.bounds) if usable else None

    def step(self) -> int:
        """Poll once and handle what came, in this thread; return the number of messages."""
        batch = self._poll_batch()
        self.handle(batch or Batch())
        return batch.size if batch else 0

    def handle(self, batch: Batch) -> None:
        """Store and decide one batch in this thread, then publish its decisions."""
        self.finish(self.begin(batch, self.conn))

    def begin(self, batch: Batch, conn: psycopg.Connection) -> OpenBatch:
        """Open the batch's database transaction and COPY its transactions, if all are new."""
        with contextlib.ExitStack() as stack:  # rolled back if the COPY fails, else kept open
            stack.enter_context(conn.transaction())
            self._check_owned(batch, conn)
            copied = not batch.transactions or ledger.copy_new_transactions(
                conn, batch.transactions
            )
            return OpenBatch(batch, conn, stack.pop_all(), copied)

    def _check_owned(self, batch: Batch, conn: psycopg.Connection) -> None:
        """Fence: lock the batch's partitions' ownership rows; fail if one was claimed since."""
        if not batch.offsets:
            return
        claimed = {tp: self._claimed.get(tp, -1) for tp in batch.offsets}
        lost = ledger.lost_partitions(conn, GROUP_ID, self.instance_id, claimed)
        if lost:
            names = ", ".join(f"{topic}[{partition}]" for topic, partition in lost)
            raise FencedError(f"{self.instance_id} no longer owns {names}; batch rolled back")

    def finish(self, opened: OpenBatch) -> None:
        """Store and decide the rest of the batch, commit, then publish what it decided."""
        acknowledged = self.publisher.take_acknowledged()
        try:
            with opened.transaction:
                stored = self.store(
                    opened.batch, opened.conn, copied=opened.copied, acknowledged=acknowledged
                )
        except BaseException:
            self.publisher.give_back(acknowledged)  # not marked: the next batch marks them
            raise
        self._failing_since, self._failures = None, 0
        self.stored += stored.inserted
        self.decided += len(stored.rows)
        self.publisher.publish(stored.rows)
        self._dead_letter(opened.batch.dead)

    def store(
        self, batch: Batch, conn: psycopg.Connection, *, copied: bool, acknowledged: list[int]
    ) -> Stored:
        """Rows, decisions, statuses and the offsets behind them, in the caller's transaction."""
        decisions.mark_published(conn, acknowledged)
        if not batch.offsets:
            return Stored([], 0)
        self.lists.refresh(conn)
        inserted = 0
        if batch.transactions:
            inserted = ledger.save_transactions(conn, batch.transactions, copied=copied).inserted
        decided_before = ledger.take_arrived(conn)
        new_alerts = ledger.save_alerts(conn, batch.alerts) if batch.alerts else []
        if batch.labels:
            ledger.save_labels(conn, batch.labels)
        if batch.dead:
            ledger.save_dead_letters(conn, batch.dead)
        due = decider.triggers(
            batch.transactions,
            batch.alert_append_ms(),
            cache=self.lists,
            new_alert_tx_ids=new_alerts,
            decided_before=decided_before,
        )
        rows = decider.decide(conn, due, cache=self.lists, thresholds=self.thresholds)
        ledger.save_offsets(conn, GROUP_ID, batch.offsets)
        return Stored(rows, inserted)

    def _dead_letter(self, letters: list[ledger.DeadLetter]) -> None:
        for letter in letters:
            self.producer.produce(
                topics.DEAD_LETTERS,
                key=letter.key,
                value=letter.payload,
                headers={
                    "reason": letter.reason.encode(),
                    "source_topic": letter.topic.encode(),
                    "source_partition": str(letter.partition).encode(),
                    "source_offset": str(letter.offset).encode(),
                    "service": GROUP_ID.encode(),
                },
            )
        if letters:  # rare, and the topic is the operators' alarm: wait for it
            self.producer.flush(30)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            if self.stopping:  # a second Ctrl+C: give up waiting
                signal.signal(signum, signal.SIG_DFL)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def close(self) -> None:
        """Flush what is in flight, note what Kafka acknowledged, leave the group, disconnect."""
        self.producer.flush(10)
        acknowledged = self.publisher.take_acknowledged()
        if acknowledged and not self.conn.closed:
            with contextlib.suppress(psycopg.Error), self.conn.transaction():
                decisions.mark_published(self.conn, acknowledged)  # else sent again next start
        self.consumer.close()
        self._close_connections()


def run(settings: Settings) -> None:
    """Entry point of the ledger process."""
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
        service = LedgerService(settings)
        log.info(
            "ledger consuming %s as %s, instance %s",
            ", ".join(INPUT_TOPICS),
            GROUP_ID,
            settings.ledger_instance_id,
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
        "ledger stopped after %.0f s, %d new transactions, %d decision versions",
        time.monotonic() - started,
        service.stored,
        service.decided,
    )
