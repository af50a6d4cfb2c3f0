"""The Flink SQL side: a table environment, the topics as tables, and the rules as one job.

The same statements run in an embedded mini-cluster (one Python process, the default) or on a
remote cluster (`execution.target=remote`). pyflink is imported lazily: it starts a JVM, and
most of the CLI never needs one.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamguard.config import Settings
from streamguard.domain.original import CATEGORY_MCC
from streamguard.kafka import topics
from streamguard.rules.catalog import Rule, check_overrides, load_rules, load_views
from streamguard.rules.functions import functions_jar, register_functions

if TYPE_CHECKING:  # pragma: no cover
    from pyflink.table import TableEnvironment

ALERTS_SINK = "fraud_alerts_sink"
JOB_NAME = "streamguard-rules"
# Idle accounts' leftovers (a travel rule's last position) expire after this much quiet.
STATE_TTL = "24 h"

TRANSACTION_COLUMNS = """
    transaction_id STRING,
    account_id STRING,
    card_token STRING,
    card_last4 STRING,
    amount DECIMAL(14, 2),
    currency STRING,
    channel STRING,
    merchant_id STRING,
    merchant_name STRING,
    merchant_mcc STRING,
    payee_key_type STRING,
    city STRING,
    state STRING,
    lat DOUBLE,
    lon DOUBLE,
    device_id STRING,
    ip_address STRING,
    ts_ms BIGINT"""

#: Column name -> its DDL ("amount DECIMAL(14, 2)"), in table order.
_COLUMN_DDL = {
    line.split()[0]: line.strip().rstrip(",") for line in TRANSACTION_COLUMNS.strip().splitlines()
}

#: Columns every job declares: event time and the alert's identity need them.
REQUIRED_COLUMNS = ("transaction_id", "account_id", "amount", "ts_ms")

#: The original system's fields (domain/original.py), declared beside the model's: the
#: `transactions` view reads a model field from its original name when the model's is null.
#: Event time always needs `timestamp`; the other two only where their field is declared.
ORIGINAL_COLUMNS = {
    "ts_ms": "`timestamp` STRING",
    "merchant_name": "merchant STRING",
    "merchant_mcc": "category STRING",
}

#: The event time in epoch ms: `ts_ms`, else the original's ISO-8601 `timestamp`.
EVENT_MS = "COALESCE(ts_ms, PARSE_EVENT_MS(`timestamp`))"


def category_mcc_sql() -> str:
    """SQL of the original's `category` as an MCC, domain/original.py's table (NULL if unknown)."""
    cases = " ".join(f"WHEN '{key}' THEN '{mcc}'" for key, mcc in sorted(CATEGORY_MCC.items()))
    key = "REGEXP_REPLACE(LOWER(TRIM(category)), '[\\s-]+', '_')"
    return f"CASE {key} {cases} END"


#: How the view reads each field that the original names otherwise.
_FROM_ORIGINAL = {
    "ts_ms": f"{EVENT_MS} AS ts_ms",
    "merchant_name": "COALESCE(merchant_name, merchant) AS merchant_name",
    "merchant_mcc": f"COALESCE(merchant_mcc, {category_mcc_sql()}) AS merchant_mcc",
}

ALERT_COLUMNS = """
    alert_id STRING,
    rule_id STRING,
    severity STRING,
    score_weight INT,
    transaction_id STRING,
    account_id STRING,
    amount DECIMAL(14, 2),
    ts_ms BIGINT,
    evidence MAP<STRING, STRING>"""

# Rows that would break event time or the alert's identity never reach a rule, nor do event times
# that are not believable against Kafka's append time (domain/event_time.py, the same bounds the
# decision service dead-letters with), nor watermark heartbeats (no transaction id). The decision
# service sends the same messages to the dead-letter topic with their reason. Event time is
# `ts_ms` or the original's `timestamp`, whichever the message has (EVENT_MS).
VALID_TRANSACTIONS_VIEW = """
CREATE TEMPORARY VIEW transactions AS
SELECT {columns}, ts, append_ts FROM transactions_raw
WHERE {event_ms} IS NOT NULL AND {event_ms} > 0 AND transaction_id IS NOT NULL
  AND account_id IS NOT NULL AND amount IS NOT NULL
  AND TO_TIMESTAMP_LTZ({event_ms}, 3) <= TIMESTAMPADD(MILLISECOND, {skew_ms}, append_ts)
  AND TO_TIMESTAMP_LTZ({event_ms}, 3) >= TIMESTAMPADD(SECOND, -{age_s}, append_ts)"""

# The late-event policy (rules/README.md): a row at or behind the watermark is late. Stateless
# rules read `transactions` and judge it; windowed and pattern rules read this view and skip it,
# so no rule ever re-opens a window it has already closed.
ON_TIME_TRANSACTIONS_VIEW = """
CREATE TEMPORARY VIEW transactions_on_time AS
SELECT * FROM transactions
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)"""


#: Event time as the watermark sees it: the event's own time, but never later than its arrival
#: plus the allowed skew, and a record without one (a heartbeat) at its arrival. For every row
#: the `transactions` view keeps, this is exactly TO_TIMESTAMP_LTZ(ts_ms, 3).
KAFKA_EVENT_TIME = (
    f"LEAST(COALESCE(TO_TIMESTAMP_LTZ({EVENT_MS}, 3), append_ts), "
    "TIMESTAMPADD(MILLISECOND, {skew_ms}, append_ts))"
)
#: A file has no arrival time: each row arrives at its own event time (every bound holds).
FILE_EVENT_TIME = f"TO_TIMESTAMP_LTZ(COALESCE({EVENT_MS}, 0), 3)"


@dataclass(frozen=True)
class Source:
    """Where the transactions come from: the live topic, or a bounded JSON-lines file (tests,
    and a backtest's history read from the ledger).

    `append_ts` declares when the record arrived (Kafka's LogAppendTime, and any column it is
    computed from); `event_time` is the SQL of the watermark's column, over the declared columns
    and `append_ts`.
    """

    connector_options: dict[str, str]
    append_ts: str = "append_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL"
    event_time: str = KAFKA_EVENT_TIME

    @staticmethod
    def kafka(
        settings: Settings,
        group_id: str = "streamguard-rules",
        *,
        topic: str = topics.TRANSACTIONS,
        startup: str = "group-offsets",
    ) -> Source:
        """A live topic; `startup` is group-offsets (resume), earliest-offset, latest-offset or
        timestamp (`kafka_between`)."""
        return Source(
            {
                "connector": "kafka",
                "topic": topic,
                "properties.bootstrap.servers": settings.bootstrap_servers,
                "properties.group.id": group_id,
                "scan.startup.mode": startup,
                "properties.auto.offset.reset": "earliest",
                "properties.fetch.min.bytes": str(settings.kafka_fetch_min_bytes),
                "properties.fetch.max.wait.ms": str(settings.kafka_fetch_wait_ms),
                "format": "json",
                "json.ignore-parse-errors": "true",
            }
        )

    @staticmethod
    def kafka_between(settings: Settings, start_ms: int, end_ms: int, group_id: str) -> Source:
        """The live topic's records appended in [start_ms, end_ms): a bounded history.

        Kafka finds each partition's first offset at or after a timestamp, so the job reads just
        this span; its end moves the watermark to the end of time and the job finishes. Without
        checkpoints the source commits no offset, so `group_id` moves nothing.
        """
        source = Source.kafka(settings, group_id, startup="timestamp")
        source.connector_options.update(
            {
                "scan.startup.timestamp-millis": str(start_ms),
                "scan.bounded.mode": "timestamp",
                "scan.bounded.timestamp-millis": str(end_ms),
            }
        )
        return source

    @staticmethod
    def file(path: Path) -> Source:
        """A bounded file of JSON lines; its end advances the watermark to the end of time."""
        return Source(
            {
                "connector": "filesystem",
                "path": str(path),
                "format": "json",
                "json.ignore-parse-errors": "true",
            },
            append_ts=f"append_ts AS {FILE_EVENT_TIME}",
            event_time=FILE_EVENT_TIME,
        )

    @staticmethod
    def ledger_file(path: Path) -> Source:
        """A bounded file of stored transactions, each with its Kafka append time (`append_ms`).

        Event time, its bounds and the watermark are the topic's: the same column over the same
        append time. Unlike the topic, the file has no heartbeats, so a quiet stretch moves the
        watermark only when the next transaction comes.
        """
        appended = "TO_TIMESTAMP_LTZ(append_ms, 3)"
        return Source(
            Source.file(path).connector_options,
            append_ts=f"append_ms BIGINT,\n    append_ts AS {appended}",
            # a computed column may not read another one: the append time is spelled out
            event_time=KAFKA_EVENT_TIME.replace("append_ts", appended),
        )


def connector_jar(settings: Settings) -> Path:
    """The Kafka SQL connector jar, resolved by Maven into the local repository."""
    from streamguard.stack.runtime import flink_connector_jar

    return flink_connector_jar(settings)


def job_options(settings: Settings) -> dict[str, str]:
    """The Flink options every StreamGuard job runs with, whatever it reads and wherever it runs."""
    return {
        "table.local-time-zone": settings.local_time_zone,
        "table.exec.source.idle-timeout": f"{settings.idle_timeout_s} s",
        "parallelism.default": str(settings.flink_parallelism),
        "pipeline.name": JOB_NAME,
        # Heap state: the rules keep minutes of events per account, small enough for the heap,
        # and the fastest backend there is. TTL bounds what an idle account leaves behind.
        "state.backend.type": "hashmap",
        "table.exec.state.ttl": STATE_TTL,
        # SQL operators copy what they keep, so records can be passed on without a copy.
        "pipeline.object-reuse": "true",
        # Each rule's INSERT expands the shared views anew; planning equal sub-plans once lets
        # every per-account rule read one account_history operator instead of one each.
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
        # The REST API's metrics (the bench's and the console's live figures) at most 1 s
        # old, not 10 s: they are fetched only when someone asks.
        "metrics.fetcher.update-interval": "1000",
        # A windowed alert waits for the first watermark past its transaction, then crosses a
        # few exchanges whose output buffers are sent when full or when this timeout passes.
        "pipeline.auto-watermark-interval": f"{settings.flink_watermark_interval_ms} ms",
        "execution.buffer-timeout.interval": f"{settings.flink_buffer_timeout_ms} ms",
    }


def create_environment(
    settings: Settings,
    *,
    remote: str = "",
    jars: list[Path] | None = None,
    ui_port: int = 0,
    restore_from: Path | None = None,
    checkpoints: bool = False,
) -> TableEnvironment:
    """A streaming table environment configured for StreamGuard.

    `ui_port` serves the Flink UI of the embedded cluster (0: a random free port). `remote` is
    HOST:PORT of an existing cluster's REST endpoint; that cluster then keeps the checkpoints
    where its own configuration says. `restore_from` is a retained checkpoint to resume from.
    Only the rules job itself sets `checkpoints`: an ad-hoc query or a replay must never leave
    a checkpoint that the rules job would later take for its own.
    """
    # No -Xms: the heap grows only as the state needs it, so a quiet stack stays small, while
    # a loaded one gets room (1 GiB made the job GC-bound at a few thousand tx/s). ParallelGC
    # spends the least CPU per event, which is what two shared cores are short of.
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap_mb}m -XX:+UseParallelGC")
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    options = job_options(settings)
    options["rest.port"] = str(ui_port)
    options["pipeline.jars"] = ";".join(jar.as_uri() for jar in [*(jars or []), functions_jar()])
    if checkpoints:
        options["execution.checkpointing.interval"] = f"{settings.checkpoint_interval_s} s"
        options["execution.checkpointing.externalized-checkpoint-retention"] = (
            "RETAIN_ON_CANCELLATION"
        )
    if remote:
        host, _, port = remote.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"remote must be HOST:PORT, got {remote!r}")
        options.update({"execution.target": "remote", "rest.address": host, "rest.port": port})
    elif checkpoints:
        options["execution.checkpointing.dir"] = checkpoint_root(settings).as_uri()
    if restore_from is not None:
        options["execution.state-recovery.path"] = restore_from.as_uri()
        # A rule removed since the checkpoint leaves state that nothing claims: drop it.
        options["execution.state-recovery.ignore-unclaimed-state"] = "true"
    for key, value in options.items():
        conf.set(key, value)
    return env


#: The layout of the rules job's state. A checkpoint of another layout cannot be restored (the
#: accumulators' serializers are part of it: state-2 is the first with hand-written ones), so
#: each layout keeps its checkpoints in a folder of its own.
STATE_FORMAT = "state-2"


def checkpoint_root(settings: Settings) -> Path:
    """Where the embedded cluster retains its checkpoints, one folder per job id."""
    return settings.state_path / "flink" / "checkpoints" / STATE_FORMAT


def drop_unreadable_checkpoints(settings: Settings) -> list[Path]:
    """Delete the checkpoints of other state layouts (an older release's), and say which."""
    parent = checkpoint_root(settings).parent
    if not parent.is_dir():
        return []
    dropped = [path for path in parent.iterdir() if path.is_dir() and path.name != STATE_FORMAT]
    for path in dropped:
        shutil.rmtree(path, ignore_errors=True)
    return dropped


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest completed checkpoint (a `chk-N` folder with its `_metadata`), if any."""
    completed = checkpoint_root(settings).glob("*/chk-*/_metadata")
    newest = max(completed, key=lambda meta: meta.stat().st_mtime, default=None)
    return newest.parent if newest is not None else None


def column_names() -> list[str]:
    """The names of the transaction columns, in order."""
    return list(_COLUMN_DDL)


def columns_read(rules: list[Rule], overrides: dict[str, str]) -> list[str]:
    """The transaction columns that the rules and the shared views mention, in table order.

    A job declares only these: the JSON source then converts a third of each message's fields
    (1.16x the catalog's rate in benchmarks/bench_rules_bounded.py). A rule that selects `*`
    gets every column. (A view's placeholders name parameters, never columns, so
    its body is read as it is.)
    """
    text = "\n".join(
        [rule.render(overrides) for rule in rules] + [view.body for view in load_views()]
    )
    if re.search(r"SELECT\s+\*|\w\.\*", text, re.IGNORECASE):
        return column_names()
    return [name for name in _COLUMN_DDL if re.search(rf"\b{name}\b", text)]


def register_tables(
    env: TableEnvironment,
    settings: Settings,
    source: Source,
    sink: dict[str, str],
    *,
    columns: list[str] | None = None,
) -> None:
    """Create `transactions_raw` (all columns, or only `columns`), the views and the sink."""
    register_transactions(env, settings, source, columns=columns)
    env.execute_sql(f"CREATE TEMPORARY TABLE {ALERTS_SINK} ({ALERT_COLUMNS}) WITH ({_with(sink)})")


def valid_transactions_view(settings: Settings, columns: list[str] | None = None) -> str:
    """The `transactions` view's SQL over `columns` (default: all) with the configured
    event-time bounds filled in; a field the original names otherwise is read from either."""
    names = [name for name in _COLUMN_DDL if columns is None or name in columns]
    selected = ", ".join(_FROM_ORIGINAL.get(name, name) for name in names)
    return VALID_TRANSACTIONS_VIEW.format(
        columns=selected, event_ms=EVENT_MS, **_bounds_sql(settings)
    )


def _bounds_sql(settings: Settings) -> dict[str, int]:
    """The event-time bounds under the names the view's and the watermark's SQL use."""
    bounds = settings.event_time_bounds
    return {"skew_ms": bounds.max_future_skew_ms, "age_s": bounds.max_age_s}


def register_transactions(
    env: TableEnvironment, settings: Settings, source: Source, *, columns: list[str] | None = None
) -> None:
    """Create `transactions_raw` (event time, bounded watermark) and the views over it.

    The shared views (`rules/views`) take their windows from the packaged rules' parameters
    and the configured overrides.
    """
    wanted = set(columns or _COLUMN_DDL) | set(REQUIRED_COLUMNS)
    names = [name for name in _COLUMN_DDL if name in wanted]
    declared = ",\n    ".join(
        [_COLUMN_DDL[name] for name in names]
        + [ORIGINAL_COLUMNS[name] for name in names if name in ORIGINAL_COLUMNS]
    )
    skew = _bounds_sql(settings)
    register_functions(env)  # the event time's column calls PARSE_EVENT_MS
    env.execute_sql(
        f"CREATE TEMPORARY TABLE transactions_raw (\n    {declared},\n"
        f"    {source.append_ts},\n"
        f"    ts AS {source.event_time.format(**skew)},\n"
        f"    WATERMARK FOR ts AS ts - {watermark_interval(settings.watermark_delay_s)}\n"
        f") WITH ({_with(source.connector_options)})"
    )
    env.execute_sql(valid_transactions_view(settings, names))
    env.execute_sql(ON_TIME_TRANSACTIONS_VIEW)
    rules = load_rules()
    for view in load_views():
        env.execute_sql(view.create_sql(rules, settings.rule_params))


def watermark_interval(delay_s: float) -> str:
    """The watermark's delay as a Flink SQL interval, to the millisecond (`INTERVAL '0.500'
    SECOND`): Flink's SECOND interval takes a fraction, which the plain int did not allow."""
    return f"INTERVAL '{delay_s:.3f}' SECOND"


def kafka_alerts_sink(settings: Settings) -> dict[str, str]:
    """The `fraud_alerts` topic as a sink, keyed by account_id, at least once (ids dedupe)."""
    return {
        "connector": "kafka",
        "topic": topics.FRAUD_ALERTS,
        "properties.bootstrap.servers": settings.bootstrap_servers,
        "key.format": "raw",
        "key.fields": "account_id",
        "value.format": "json",
        "value.fields-include": "ALL",
        "sink.delivery-guarantee": "at-least-once",
    }


def statement_set(env: TableEnvironment, rules: list[Rule], overrides: dict[str, str]) -> Any:
    """One job holding every rule, so the source is read once."""
    check_overrides(rules, overrides)
    statements = env.create_statement_set()
    for rule in rules:
        statements.add_insert_sql(rule.insert_sql(ALERTS_SINK, overrides))
    return statements


def _with(options: dict[str, str]) -> str:
    return ", ".join(f"'{key}' = '{value}'" for key, value in options.items())


def build_rules_job(
    settings: Settings,
    *,
    remote: str = "",
    rules: list[Rule] | None = None,
    restore_from: Path | None = None,
) -> Any:
    """The live job: Kafka transactions in, Kafka alerts out. Returns the statement set."""
    env = create_environment(
        settings,
        remote=remote,
        jars=[connector_jar(settings)],
        ui_port=settings.flink_ui_port,
        restore_from=restore_from,
        checkpoints=True,
    )
    rules = rules if rules is not None else load_rules()
    register_tables(
        env,
        settings,
        Source.kafka(settings),
        kafka_alerts_sink(settings),
        columns=columns_read(rules, settings.rule_params),
    )
    return statement_set(env, rules, settings.rule_params)
