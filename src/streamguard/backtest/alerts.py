"""The catalogs' alerts over a bounded history: one Flink job reads it once for all of them.

Each catalog's rules run as in the live job (the same tables, views and event-time semantics),
their alerts collected back to Python. A rule that two catalogs render alike runs once and its
alerts count for both: a threshold change replays the catalog plus one rule, not two catalogs.
No sink is written: a backtest never touches a live topic. Catalogs whose shared views render
differently (a window override read by a view) cannot share one plan of the views, so each
such group gets a job of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from streamguard.config import Settings
from streamguard.domain.models import FraudAlert
from streamguard.rules.catalog import Rule, check_overrides, load_rules, load_views
from streamguard.rules.engine import (
    Source,
    columns_read,
    connector_jar,
    create_environment,
    register_tables,
)
from streamguard.rules.functions import collected_rows
from streamguard.rules.replay import alert_of


@dataclass(frozen=True)
class Catalog:
    """A named set of rules with its parameter overrides."""

    name: str
    rules: list[Rule]
    overrides: dict[str, str]

    def check(self) -> None:
        """Refuse an override that names no rule or parameter, and render every rule."""
        check_overrides(self.rules, self.overrides)
        for rule in self.rules:
            rule.render(self.overrides)
        for view in load_views():
            view.render(load_rules(), self.overrides)

    def views_key(self) -> tuple[str, ...]:
        """The shared views as this catalog renders them (equal keys share one job)."""
        return tuple(view.render(load_rules(), self.overrides) for view in load_views())


def catalog_alerts(
    settings: Settings,
    source: Callable[[], Source],
    catalogs: list[Catalog],
    seconds: dict[str, float] | None = None,
) -> dict[str, list[FraudAlert]]:
    """Every alert of each catalog over the source, by catalog name.

    `seconds` gets the time of each stage added to it: `engine` (the JVM and the tables),
    `plan` (planning and submitting the job), `job` (the job's run while its rows are
    collected) and `collect` (making alerts of the rows).
    """
    stages = seconds if seconds is not None else {}
    groups: dict[tuple[str, ...], list[Catalog]] = {}
    for catalog in catalogs:
        groups.setdefault(catalog.views_key(), []).append(catalog)
    found: dict[str, list[FraudAlert]] = {catalog.name: [] for catalog in catalogs}
    for members in groups.values():
        for names, alert in _run(settings, source(), members, stages):
            for name in names:
                found[name].append(alert)
    return found


def distinct_rules(catalogs: list[Catalog]) -> dict[str, list[str]]:
    """Each distinct rule's alert SQL (as its catalog renders it) -> the catalogs that have it.

    Catalogs that render a rule alike get the same alerts from it (their views are alike too:
    see views_key), so the job runs it once; a threshold change then adds one rule, not a
    catalog.
    """
    owners: dict[str, list[str]] = {}
    for catalog in catalogs:
        for rule in catalog.rules:
            owners.setdefault(rule.alert_sql(catalog.overrides), []).append(catalog.name)
    return owners


def _run(
    settings: Settings, source: Source, catalogs: list[Catalog], stages: dict[str, float]
) -> list[tuple[list[str], FraudAlert]]:
    """One bounded job over `source` holding each distinct rule of `catalogs` once; every
    alert with the names of the catalogs it belongs to."""
    began = time.monotonic()
    view_settings = settings.model_copy(update={"rule_params": catalogs[0].overrides})
    env = create_environment(view_settings, jars=[connector_jar(settings)])
    env.get_config().set("pipeline.name", "streamguard-backtest")
    columns = columns_of(catalogs)
    register_tables(env, view_settings, source, {"connector": "blackhole"}, columns=columns)
    owners = list(distinct_rules(catalogs).items())
    query = "\nUNION ALL\n".join(
        f"SELECT {index} AS rule_index, a.* FROM (\n{sql}\n) a"
        for index, (sql, _) in enumerate(owners)
    )
    _add(stages, "engine", began)
    began = time.monotonic()
    result = env.execute_sql(query)
    _add(stages, "plan", began)
    began = time.monotonic()
    values = collected_rows(result)
    _add(stages, "job", began)
    began = time.monotonic()
    tagged = [(owners[row[0]][1], alert_of(row[1:])) for row in values]
    _add(stages, "collect", began)
    return tagged


def columns_of(catalogs: list[Catalog]) -> list[str]:
    """The transaction columns that any of the catalogs reads."""
    return sorted({name for c in catalogs for name in columns_read(c.rules, c.overrides)})


def _add(stages: dict[str, float], name: str, began: float) -> None:
    stages[name] = stages.get(name, 0.0) + time.monotonic() - began
