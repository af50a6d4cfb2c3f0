"""The decision service's use case: store a batch exactly once (fence → rows → decisions → offsets).

No Kafka here. A batch is values (`parse.Batch`, made by `parse.split` from Kafka messages or
from `Record`s), the caller hands in the connection, and the decision time comes from an
injected clock, so a backtest can run the service's whole write path over recorded input on a
database of its own: `claim` the partitions once, then `store_batch` each batch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import psycopg

from streamguard.decide import decider
from streamguard.decide.lists import ListCache
from streamguard.decide.parse import Batch
from streamguard.domain.policy import Thresholds
from streamguard.errors import FencedError
from streamguard.store import decisions, ledger

#: The default consumer group of the decision instances (STREAMGUARD_DECIDE_GROUP), the key
#: of their offsets and owners.
GROUP_ID = "streamguard-decide"

Partition = tuple[str, int]


def wall_clock_ms() -> int:
    """Now, in epoch milliseconds (the default clock)."""
    return int(time.time() * 1000)


class Record:
    """A message as `parse.split` reads it, without Kafka (a backtest's or a test's input)."""

    __slots__ = ("_append_ms", "_key", "_offset", "_partition", "_topic", "_value")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes,
        key: bytes | None = None,
        append_ms: int | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._append_ms = key, value, append_ms

    def topic(self) -> str:
        """The topic it was read from."""
        return self._topic

    def partition(self) -> int:
        """Its partition."""
        return self._partition

    def offset(self) -> int:
        """Its offset in the partition."""
        return self._offset

    def key(self) -> bytes | None:
        """Its key."""
        return self._key

    def value(self) -> bytes:
        """Its payload."""
        return self._value

    def timestamp(self) -> tuple[int, int]:
        """(1, append time in ms) like Kafka's LogAppendTime, or (0, -1) when unknown."""
        return (1, self._append_ms) if self._append_ms is not None else (0, -1)


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


class BatchStore:
    """Stores batches for one instance, fenced by the partitions it claimed (`claimed`)."""

    def __init__(
        self,
        *,
        instance_id: str,
        lists: ListCache,
        thresholds: Thresholds,
        clock_ms: Callable[[], int] = wall_clock_ms,
        group_id: str = GROUP_ID,
    ) -> None:
        self.instance_id = instance_id
        self.lists = lists
        self.thresholds = thresholds
        self.clock_ms = clock_ms
        self.group_id = group_id
        #: The partitions this instance claimed in PostgreSQL, with their generations.
        self.claimed: dict[Partition, int] = {}

    def claim(
        self, conn: psycopg.Connection, partitions: Sequence[Partition]
    ) -> tuple[dict[Partition, int], dict[Partition, int]]:
        """Claim the partitions (a new generation each) and read the group's stored offsets.

        Run in one transaction of the caller's; set `claimed` to the first value once it commits.
        """
        generations = ledger.claim_partitions(conn, self.group_id, self.instance_id, partitions)
        return generations, ledger.load_offsets(conn, self.group_id)

    def store_batch(
        self, conn: psycopg.Connection, batch: Batch, *, acknowledged: Sequence[int] = ()
    ) -> Stored:
        """Fence, store, decide and save the offsets of one batch, committed on return."""
        opened = self.begin(batch, conn)
        with opened.transaction:
            return self.store(batch, conn, copied=opened.copied, acknowledged=list(acknowledged))

    def begin(self, batch: Batch, conn: psycopg.Connection) -> OpenBatch:
        """Open the batch's database transaction and COPY its transactions, if all are new."""
        with contextlib.ExitStack() as stack:  # rolled back if the COPY fails, else kept open
            stack.enter_context(conn.transaction())
            self.check_owned(batch, conn)
            copied = not batch.transactions or ledger.copy_new_transactions(
                conn, batch.transactions
            )
            return OpenBatch(batch, conn, stack.pop_all(), copied)

    def check_owned(self, batch: Batch, conn: psycopg.Connection) -> None:
        """Fence: lock the batch's partitions' ownership rows; fail if one was claimed since."""
        if not batch.offsets:
            return
        claimed = {tp: self.claimed.get(tp, -1) for tp in batch.offsets}
        lost = ledger.lost_partitions(conn, self.group_id, self.instance_id, claimed)
        if lost:
            names = ", ".join(f"{topic}[{partition}]" for topic, partition in lost)
            raise FencedError(f"{self.instance_id} no longer owns {names}; batch rolled back")

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
        rows = decider.decide(
            conn, due, cache=self.lists, thresholds=self.thresholds, now_ms=self.clock_ms()
        )
        ledger.save_offsets(conn, self.group_id, batch.offsets)
        return Stored(rows, inserted)
