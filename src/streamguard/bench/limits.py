"""The machine's raw limits, measured on the benchmark's own stack before the pipeline runs.

- Kafka produce and consume: kafka-tools' ProducerPerformance and ConsumerPerformance on a
  scratch topic shaped like `transactions` (same partitions, LogAppendTime), with real
  transaction JSON as the payload and the pipeline producer's settings (acks=all, idempotent,
  lz4, linger 5 ms).
- PostgreSQL: COPY into a scratch copy of the transactions table (same columns, keys and
  indexes), from text prepared beforehand so that only the server's work is timed.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from streamguard.bench.limits_parse import (
    copy_line,
    parse_consumer_performance,
    parse_producer_performance,
)
from streamguard.config import Settings
from streamguard.domain.models import Transaction, from_epoch_ms
from streamguard.stack import runtime
from streamguard.store.ledger import TX_COLUMNS

SCRATCH_TOPIC = "bench_raw_limits"
SCRATCH_TABLE = "bench_copy_scratch"
PERF_HEAP_MB = 512


def _java(settings: Settings, main_class: str, *args: str) -> list[str]:
    return [
        runtime.java_executable(),
        f"-Xmx{PERF_HEAP_MB}m",
        f"-Dlog4j2.configurationFile={runtime.template_path('log4j2.properties')}",
        f"-Dkafka.logs.dir={settings.state_path / 'logs'}",
        "-cp",
        runtime.kafka_classpath(settings),
        main_class,
        *args,
    ]


def create_scratch_topic(settings: Settings) -> None:
    """A topic shaped like `transactions`, for the perf tools only."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 3})
    topic = NewTopic(
        SCRATCH_TOPIC,
        num_partitions=settings.transactions_partitions,
        replication_factor=1,
        config={"message.timestamp.type": "LogAppendTime"},
    )
    for future in admin.create_topics([topic], operation_timeout=30).values():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def delete_scratch_topic(settings: Settings) -> None:
    """Remove the perf tools' topic so that it takes no disk during the pipeline run."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 3})
    for future in admin.delete_topics([SCRATCH_TOPIC], operation_timeout=30).values():
        future.result()


def kafka_produce_limit(
    settings: Settings, payloads: Sequence[bytes], records: int, folder: Path
) -> dict[str, Any]:
    """ProducerPerformance flat out, with the pipeline producer's settings."""
    payload_file = folder / "perf_payloads.jsonl"
    payload_file.write_bytes(b"\n".join(payloads) + b"\n")
    argv = _java(
        settings,
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        SCRATCH_TOPIC,
        "--num-records",
        str(records),
        "--throughput",
        "-1",
        "--payload-file",
        str(payload_file),
        "--producer-props",
        f"bootstrap.servers={settings.bootstrap_servers}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        "compression.type=lz4",
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    limit = parse_producer_performance(result.stdout + result.stderr)
    return asdict(limit)


def kafka_consume_limit(settings: Settings, records: int) -> dict[str, Any]:
    """ConsumerPerformance reading back what the producer test wrote."""
    argv = _java(
        settings,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        settings.bootstrap_servers,
        "--topic",
        SCRATCH_TOPIC,
        "--messages",
        str(records),
        "--group",
        f"bench-perf-{uuid.uuid4().hex[:8]}",
        "--timeout",
        "30000",
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    return asdict(parse_consumer_performance(result.stdout + result.stderr))


def copy_text(samples: Sequence[Transaction], rows: int) -> str:
    """COPY text for `rows` transactions cycling through the samples, each with a unique id."""
    now = datetime.now(timezone.utc)
    templates = []
    for tx in samples:
        values = [getattr(tx, c, None) for c in TX_COLUMNS[:-2]]
        values = [v.value if isinstance(v, Enum) else v for v in values]
        templates.append(copy_line([*values[1:], from_epoch_ms(tx.ts_ms), now]))
    prefix = uuid.uuid4().hex[:8]
    return "".join(
        f"{prefix}-{index:010d}\t{templates[index % len(templates)]}" for index in range(rows)
    )


def postgres_copy_limit(settings: Settings, samples: Sequence[Transaction], rows: int) -> dict:
    """Rows per second that COPY writes into a scratch copy of `transactions`, commit included."""
    from streamguard.store.db import connect

    text = copy_text(samples, rows).encode()
    chunk = 1 << 20
    with connect(settings) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        conn.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE transactions INCLUDING ALL)")
        conn.commit()
        try:
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {SCRATCH_TABLE} ({', '.join(TX_COLUMNS)}) FROM STDIN") as copy,
            ):
                for offset in range(0, len(text), chunk):
                    copy.write(text[offset : offset + chunk])
            conn.commit()
            elapsed = time.perf_counter() - started
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            conn.commit()
    return {
        "rows": rows,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rows / elapsed, 1),
        "mb_per_s": round(len(text) / elapsed / 1e6, 2),
    }
