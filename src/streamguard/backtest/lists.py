"""The block and allow lists as they stood at each moment, replayed from their audit trail."""

from __future__ import annotations

from datetime import datetime

from streamguard.decide.lists import ListCache
from streamguard.store.backtest_reads import ListChange
from streamguard.store.lists import ListEntry


class ListTimeline:
    """Walks `list_changes` forward: `at(moment)` is the lists as they stood at that moment.

    Moments must not go back: a backtest decides its transactions in event-time order.
    """

    def __init__(self, changes: list[ListChange]) -> None:
        self._changes = sorted(changes, key=lambda c: c.changed_at)
        self._applied = 0
        self._entries: dict[tuple[str, str, str], ListEntry] = {}
        self._cache = ListCache()
        self._cache.load(())

    def at(self, moment: datetime) -> ListCache:
        """The lists with every change made at or before `moment` applied."""
        changed = False
        while (
            self._applied < len(self._changes) and self._changes[self._applied].changed_at <= moment
        ):
            change = self._changes[self._applied]
            key = (change.list_type, change.entity_type, change.entity_value)
            if change.change == "ADD":
                self._entries[key] = ListEntry(*key, change.reason)
            else:
                self._entries.pop(key, None)
            self._applied += 1
            changed = True
        if changed:
            self._cache.load(self._entries.values())
        return self._cache

    def ever_listed(self, entity_type: str) -> set[str]:
        """Every value of the kind that some change names (a superset of any moment's)."""
        return {c.entity_value for c in self._changes if c.entity_type == entity_type}
