"""Ad-hoc Flink SQL over the live topics: the stand-in for ksqlDB's `EMIT CHANGES` queries.

The query sees `transactions` (valid rows, with the event-time column `ts`), `transactions_raw`,
`transactions_on_time` and `fraud_alerts`, all read from Kafka by a throw-away consumer group.
Timestamp columns are cast to strings before they reach Python, which cannot unpickle them.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from streamguard.config import Settings
from streamguard.kafka import topics
from streamguard.rules.engine import (
    ALERT_COLUMNS,
    Source,
    _with,
    connector_jar,
    create_environment,
    register_transactions,
)

_UNPICKLABLE = ("TIMESTAMP", "TIME", "DATE")


@dataclass(frozen=True)
class Change:
    """One row of a continuous query's result, with its kind (+I, -U, +U, -D)."""

    kind: str
    values: tuple[Any, ...]


def run_query(
    settings: Settings, query: str, *, from_beginning: bool = False
) -> tuple[list[str], Generator[Change, None, None]]:
    """The result's column names and an iterator over its rows as they arrive.

    Closing the iterator (or leaving the loop that reads it) cancels the Flink job.
    """
    env = create_environment(settings, jars=[connector_jar(settings)])
    env.get_config().set("pipeline.name", "streamguard-sql")
    group = f"streamguard-sql-{uuid.uuid4().hex[:8]}"
    startup = "earliest-offset" if from_beginning else "latest-offset"
    register_transactions(env, settings, Source.kafka(settings, group, startup=startup))
    alerts = Source.kafka(settings, group, topic=topics.FRAUD_ALERTS, startup=startup)
    env.execute_sql(
        f"CREATE TEMPORARY TABLE fraud_alerts ({ALERT_COLUMNS},\n"
        "    appended_at TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL\n"
        f") WITH ({_with(alerts.connector_options)})"
    )
    table = env.sql_query(query)
    env.create_temporary_view("adhoc_result", table)
    schema = table.get_schema()
    names = schema.get_field_names()
    types = [str(data_type).upper() for data_type in schema.get_field_data_types()]
    columns = ", ".join(
        f"CAST(`{name}` AS STRING) AS `{name}`"
        if any(kind in data_type for kind in _UNPICKLABLE)
        else f"`{name}`"
        for name, data_type in zip(names, types, strict=True)
    )
    result = env.execute_sql(f"SELECT {columns} FROM adhoc_result")
    return names, _changes(result.collect())


def _changes(rows: Any) -> Generator[Change, None, None]:
    with rows:
        for row in rows:
            yield Change(_KINDS.get(str(row.get_row_kind()), "+I"), tuple(row))


_KINDS = {
    "RowKind.INSERT": "+I",
    "RowKind.UPDATE_BEFORE": "-U",
    "RowKind.UPDATE_AFTER": "+U",
    "RowKind.DELETE": "-D",
}
