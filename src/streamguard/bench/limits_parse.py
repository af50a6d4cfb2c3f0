"""Reading the Kafka perf tools' output, and writing PostgreSQL COPY text. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


class PerfOutputError(ValueError):
    """A perf tool printed something we cannot read."""


@dataclass(frozen=True)
class KafkaProduceLimit:
    """ProducerPerformance's final summary."""

    records: int
    records_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class KafkaConsumeLimit:
    """ConsumerPerformance's result; the fetch rate leaves out the group's join time."""

    records: int
    records_per_s: float
    fetch_records_per_s: float
    mb_per_s: float


def parse_producer_performance(output: str) -> KafkaProduceLimit:
    """The last summary line of ProducerPerformance (the per-window lines come before it)."""
    matches = list(_PRODUCER_SUMMARY.finditer(output))
    if not matches:
        raise PerfOutputError(f"no ProducerPerformance summary in:\n{output[-1000:]}")
    last = matches[-1]
    return KafkaProduceLimit(
        records=int(last["records"]),
        records_per_s=float(last["rate"]),
        mb_per_s=float(last["mb"]),
        p50_ms=float(last["p50"]),
        p99_ms=float(last["p99"]),
        max_ms=float(last["max"]),
    )


def parse_consumer_performance(output: str) -> KafkaConsumeLimit:
    """The CSV header and row that ConsumerPerformance prints."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            header = [h.strip() for h in line.split(",")]
            values = [v.strip() for v in lines[index + 1].split(",")]
            row = dict(zip(header, values, strict=False))
            try:
                return KafkaConsumeLimit(
                    records=int(row["data.consumed.in.nMsg"]),
                    records_per_s=float(row["nMsg.sec"]),
                    fetch_records_per_s=float(row["fetch.nMsg.sec"]),
                    mb_per_s=float(row["MB.sec"]),
                )
            except (KeyError, ValueError) as exc:
                raise PerfOutputError(f"unreadable ConsumerPerformance row: {row}") from exc
    raise PerfOutputError(f"no ConsumerPerformance result in:\n{output[-1000:]}")


def _copy_field(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_line(values: Sequence[object]) -> str:
    """One row in PostgreSQL's COPY text format, newline included."""
    return "\t".join(_copy_field(value) for value in values) + "\n"
