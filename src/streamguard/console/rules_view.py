"""The rules page: the catalog with its parameters, alerts per rule over 24 h, precision.

Precision joins every alert with the labels, so the whole view is cached for `TTL_S`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from streamguard.config import Settings
from streamguard.domain.charts import ChartRange, bucket_starts
from streamguard.domain.rule_quality import Precision, from_resolutions, sparkline
from streamguard.rules.catalog import load_rules
from streamguard.store import rule_reads

TTL_S = 30.0
HOURS = ChartRange("24h-hourly", timedelta(hours=24), timedelta(hours=1))


@dataclass(frozen=True)
class RuleRow:
    """One rule as the page and the API show it."""

    rule_id: str
    severity: str
    weight: int
    description: str
    params: dict[str, str]
    alerts_total: int
    alerts_24h: int
    alerts_per_hour: list[int]
    sparkline: str
    by_analysts: Precision
    resolutions: tuple[int, int, int]
    by_labels: Precision


@dataclass(frozen=True)
class RulesView:
    """The catalog's rules, plus alerts of rules no longer in it."""

    taken_at: datetime
    hour_starts: list[datetime]
    rules: list[RuleRow]


class RulesCache:
    """One build of the rules view per TTL_S for every caller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: tuple[float, RulesView] | None = None
        self._lock = threading.Lock()

    def view(self, conn: psycopg.Connection) -> RulesView:
        """The cached view, rebuilt when stale."""
        with self._lock:
            if self._built is None or time.monotonic() - self._built[0] >= TTL_S:
                self._built = (time.monotonic(), self._build(conn))
            return self._built[1]

    def _build(self, conn: psycopg.Connection) -> RulesView:
        now = datetime.now(timezone.utc)
        starts = bucket_starts(HOURS, now)
        totals = rule_reads.alert_totals(conn)
        hourly = rule_reads.alerts_per_bucket(conn, starts[0], HOURS.width)
        resolved = rule_reads.resolutions_by_rule(conn)
        labelled = rule_reads.labels_by_rule(conn)
        catalog = {rule.rule_id: rule for rule in load_rules()}
        overrides = self.settings.rule_params
        rows = []
        for rule_id in [*catalog, *sorted(set(totals) - set(catalog))]:
            rule = catalog.get(rule_id)
            per_hour = [hourly.get(rule_id, {}).get(s, 0) for s in starts]
            counts = resolved.get(rule_id, (0, 0, 0))
            fraud, judged = labelled.get(rule_id, (0, 0))
            rows.append(
                RuleRow(
                    rule_id,
                    rule.severity if rule else "—",
                    rule.score_weight if rule else 0,
                    rule.description if rule else "not in the catalog any more",
                    rule.values(overrides) if rule else {},
                    totals.get(rule_id, 0),
                    sum(per_hour),
                    per_hour,
                    sparkline(per_hour),
                    from_resolutions(*counts),
                    counts,
                    Precision(fraud, judged),
                )
            )
        return RulesView(now, starts, rows)
