"""The decision service: poll a batch, validate, store, decide, write it all with the offsets.

Offsets live in PostgreSQL (table consumer_offsets), written in the same database transaction as
the rows and decisions they produced, so a crash at any point neither loses nor doubles a row:
on (re)assignment each partition resumes from the offset stored with the last committed batch.
Decisions are then produced to `fraud_decisions` from that committed state (see publisher.py).
Messages that fail validation go to the dead-letter topic (reason in the headers) and the
dead_letters table; the loop goes on.
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


class LedgerService:
    """Consumes transactions, alerts and labels into PostgreSQL and decides, exactly once."""

    def __init__(self, settings: Settings, *, poll_timeout_s: float = 0.1) -> None:
        self.settings = settings
        self.batch_size = settings.ledger_batch_size
        self.poll_timeout_s = poll_timeout_s
        self.linger_s = settings.ledger_linger_ms / 1000
        self.stopping = False
        self.conn = connect_app(settings, application_name=GROUP_ID)
        # A second connection, so that one batch's COPY runs while the one before is decided.
        self.spare = connect_app(settings, application_name=GROUP_ID)
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
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._opened: queue.Queue[OpenBatch | None] = queue.Queue(maxsize=1)
        self._free: queue.Queue[psycopg.Connection] = queue.Queue()
        self._free.put(self.conn)
        self._free.put(self.spare)
        self._failure: BaseException | None = None

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume each partition from the offset stored with the last committed batch."""
        while self._queue.unfinished_tasks and self._failure is None:
            time.sleep(0.01)  # the writer commits what is queued first; then the offsets are final
        stored = ledger.load_offsets(self.conn, GROUP_ID)
        self.conn.rollback()
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        log.info("assigned %d partitions, resuming from the offsets in PostgreSQL", len(partitions))

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
        resent = self.publisher.resend_unpublished(self.conn)
        if resent:
            log.info("resent %d committed decisions that Kafka had not acknowledged", resent)
        self.consumer.subscribe(list(INPUT_TOPICS), on_assign=self._on_assign)
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
        last_put = time.monotonic()
        try:
            while not self.stopping and self._failure is None:
                batch = self._poll_batch()
                if batch is None and time.monotonic() - last_put < 1.0:
                    continue
                self._put(self._queue, batch or Batch())  # an empty one lets the writer note acks
                last_put = time.monotonic()
        finally:
            self._put(self._queue, None)
            for thread in stages:
                thread.join()
            self.close()
        if self._failure is not None:
            raise self._failure

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
            log.exception("writing a batch failed; stopping")
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
        """Wait for one message, then for up to a batch more during the linger."""
        first = self.consumer.consume(1, self.poll_timeout_s)
        if not first:
            return []
        return first + self.consumer.consume(self.batch_size - 1, self.linger_s)

    def _poll_batch(self) -> Batch | None:
        messages = self.poll()
        usable = [m for m in messages if m.error() is None]
        for message in messages:
            error = message.error()
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
            copied = not batch.transactions or ledger.copy_new_transactions(
                conn, batch.transactions
            )
            return OpenBatch(batch, conn, stack.pop_all(), copied)

    def finish(self, opened: OpenBatch) -> None:
        """Store and decide the rest of the batch, commit, then publish what it decided."""
        with opened.transaction:
            rows = self.store(opened.batch, opened.conn, copied=opened.copied)
        self.publisher.publish(rows)
        self._dead_letter(opened.batch.dead)

    def store(
        self, batch: Batch, conn: psycopg.Connection, *, copied: bool
    ) -> list[decisions.HistoryRow]:
        """Rows, decisions, statuses and the offsets behind them, in the caller's transaction."""
        decisions.mark_published(conn, self.publisher.take_acknowledged())
        if not batch.offsets:
            return []
        self.lists.refresh(conn)
        decided_before: list[str] = []
        if batch.transactions:
            result = ledger.save_transactions(conn, batch.transactions, copied=copied)
            self.stored += result.inserted
            decided_before = result.decided_before
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
        self.decided += len(rows)
        ledger.save_offsets(conn, GROUP_ID, batch.offsets)
        return rows

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
            with self.conn.transaction():
                decisions.mark_published(self.conn, acknowledged)
        self.consumer.close()
        self.conn.close()
        self.spare.close()


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
    service = LedgerService(settings)
    log.info("ledger consuming %s as %s", ", ".join(INPUT_TOPICS), GROUP_ID)
    service.run()
    log.info(
        "ledger stopped after %.0f s, %d new transactions, %d decision versions",
        time.monotonic() - started,
        service.stored,
        service.decided,
    )
