"""The block and allow lists in memory, reloaded when they change (checked every few seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

import psycopg

from streamguard.domain.scoring import ListHit
from streamguard.store import lists
from streamguard.store.ledger import LedgerRow

_KEYS = (
    ("ACCOUNT", attrgetter("account_id")),
    ("MERCHANT", attrgetter("merchant_id")),
    ("DEVICE", attrgetter("device_id")),
)


class ListCache:
    """Answers "is this account, merchant or device on a list?" without a query per message."""

    def __init__(
        self, refresh_s: float = 2.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # The clock is a parameter so that a test can check "reloaded within refresh_s" against
        # time it controls, not against a loaded machine's.
        self.refresh_s = refresh_s
        self._clock = clock
        self.version = -1
        self._next_check = 0.0
        self._index: dict[tuple[str, str], tuple[ListHit, ...]] = {}
        self._listed: dict[str, frozenset[str]] = {}

    def refresh(self, conn: psycopg.Connection, *, force: bool = False) -> bool:
        """Reload when due and changed; return True when the lists were reloaded."""
        now = self._clock()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.refresh_s
        latest = lists.latest_change(conn)
        if latest == self.version:
            return False
        self.load(lists.entries(conn))
        self.version = latest
        return True

    def load(self, entries: Iterable[lists.ListEntry]) -> None:
        """Replace the lists with these entries."""
        index: dict[tuple[str, str], list[ListHit]] = {}
        for entry in entries:
            hit = ListHit(entry.list_type, entry.entity_type, entry.entity_value, entry.reason)
            index.setdefault((entry.entity_type, entry.entity_value), []).append(hit)
        self._index = {key: tuple(hits) for key, hits in index.items()}
        self._listed = {
            kind: frozenset(value for entity, value in index if entity == kind) for kind, _ in _KEYS
        }

    def __len__(self) -> int:
        return sum(len(hits) for hits in self._index.values())

    def listed(self, rows: Sequence[LedgerRow]) -> list[LedgerRow]:
        """The rows whose account, merchant or device is on a list.

        Set intersections first (C speed): most batches have no listed entity at all, and then
        no row is looked at one by one.
        """
        if not self._index:
            return []
        found = [
            (get, hit)
            for kind, get in _KEYS
            if (hit := self._listed[kind].intersection(map(get, rows)))
        ]
        return [row for row in rows if any(get(row) in hit for get, hit in found)] if found else []

    def hits(
        self, account_id: str, merchant_id: str | None = None, device_id: str | None = None
    ) -> tuple[ListHit, ...]:
        """Every list entry that matches; merchant and device are unknown until the tx arrives."""
        if not self._index:
            return ()
        found: list[ListHit] = []
        for key in (("ACCOUNT", account_id), ("MERCHANT", merchant_id), ("DEVICE", device_id)):
            if key[1] is not None:
                found.extend(self._index.get(key, ()))  # type: ignore[arg-type]
        return tuple(found)
