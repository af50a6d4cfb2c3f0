"""Replay a bounded file of transactions through the rule catalog and return the alerts.

The same SQL, the same tables and the same event-time semantics as the live job, but the input
is a JSON-lines file and the alerts come back to Python. The end of the file moves the watermark
to the end of time, so every window closes and the run ends. The rule tests use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamguard.config import Settings
from streamguard.domain.models import FraudAlert
from streamguard.rules.catalog import Rule, check_overrides, load_rules
from streamguard.rules.engine import Source, columns_read, create_environment, register_tables

#: The columns of a rule's alert query, in order (the alerts sink's columns).
ALERT_FIELDS = (
    "alert_id",
    "rule_id",
    "severity",
    "score_weight",
    "transaction_id",
    "account_id",
    "amount",
    "ts_ms",
    "evidence",
)


def replay(settings: Settings, path: Path, *, rules: list[Rule] | None = None) -> list[FraudAlert]:
    """Every alert the rules raise over the file, in the order Flink emits them."""
    rules = rules if rules is not None else load_rules()
    check_overrides(rules, settings.rule_params)
    env = create_environment(settings)
    env.get_config().set("pipeline.name", "streamguard-replay")
    register_tables(
        env,
        settings,
        Source.file(path.resolve()),
        {"connector": "blackhole"},
        columns=columns_read(rules, settings.rule_params),
    )
    query = "\nUNION ALL\n".join(rule.alert_sql(settings.rule_params) for rule in rules)
    alerts = []
    with env.execute_sql(query).collect() as rows:
        for row in rows:
            alerts.append(alert_of(tuple(row)))
    return alerts


def alert_of(values: Sequence[Any]) -> FraudAlert:
    """An alert from a row of a rule's alert query (its columns in ALERT_FIELDS order)."""
    return FraudAlert.model_validate(dict(zip(ALERT_FIELDS, values, strict=True)))
