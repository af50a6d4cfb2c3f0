"""The rules job as Flink's REST API reports it: its state, its Web UI, its Kafka positions.

Every call has a short timeout; when the API does not answer, `job` returns None and the rest
return empty, so a page that asks still answers. The Kafka source's reader publishes, per
partition, the offset it has read up to (`KafkaSourceReader.topic.T.partition.P.currentOffset`)
and, where the connector provides it, `pendingRecords`: the job's live lag, fresher than the
offsets it commits to Kafka at each checkpoint. The connector this stack runs
(flink-sql-connector-kafka 5.0.0-2.2) publishes neither, so there the console falls back to the
committed offsets; a cluster whose connector does gets the live figures.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from streamguard.config import Settings
from streamguard.domain.pipeline import TopicPartition
from streamguard.rules.engine import JOB_NAME

_CURRENT = re.compile(
    r"^(?:\d+\.)?(?:.*\.)?KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<p>\d+)"
    r"\.currentOffset$"
)
_PENDING = re.compile(r"^(?P<subtask>\d+)\.(?:.*\.)?pendingRecords$")
#: A source operator's records emitted, per subtask (`0.Source__transactions_raw[1].numRecordsOut`).
_SOURCE_OUT = re.compile(r"^\d+\.Source__[^.]*\.numRecordsOut$")


@dataclass(frozen=True)
class FlinkJob:
    """The newest rules job the cluster knows."""

    jid: str
    state: str
    ui_url: str
    source_vertices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceProgress:
    """What the job's Kafka sources report: positions per partition, and pending records."""

    positions: dict[TopicPartition, int]
    pending_records: int | None


def base_url(settings: Settings) -> str:
    """The REST endpoint: the remote cluster's, or the local mini-cluster's."""
    if settings.flink_remote:
        return f"http://{settings.flink_remote}"
    return f"http://localhost:{settings.flink_ui_port}"


def _get(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def job(settings: Settings, timeout_s: float = 1.0) -> FlinkJob | None:
    """The rules job (state NO_JOB when none runs); None when the REST API does not answer."""
    base = base_url(settings)
    try:
        jobs = [
            j
            for j in _get(f"{base}/jobs/overview", timeout_s).get("jobs", [])
            if j.get("name") == JOB_NAME
        ]
        if not jobs:
            return FlinkJob("", "NO_JOB", f"{base}/#/overview")
        newest = max(jobs, key=lambda j: (j.get("state") == "RUNNING", j.get("start-time", 0)))
        detail = _get(f"{base}/jobs/{newest['jid']}", timeout_s)
    except (OSError, ValueError, KeyError):
        return None
    sources = [
        str(v["id"])
        for v in detail.get("vertices", [])
        if str(v.get("name", "")).startswith("Source")
    ]
    return FlinkJob(
        newest["jid"],
        str(newest.get("state")),
        f"{base}/#/job/running/{newest['jid']}/overview",
        sources,
    )


def _vertex_metrics(
    settings: Settings, flink_job: FlinkJob, vertex: str, wanted: re.Pattern[str], timeout_s: float
) -> dict[str, object]:
    """The values of the vertex's metrics whose names match `wanted` ({} when none does).
    Raises OSError/ValueError/KeyError/TypeError when the API does not answer sensibly."""
    url = f"{base_url(settings)}/jobs/{flink_job.jid}/vertices/{vertex}/metrics"
    names = [m["id"] for m in _get(url, timeout_s) if wanted.match(m["id"])]
    if not names:
        return {}
    query = urllib.parse.urlencode({"get": ",".join(names)})
    return {m["id"]: m.get("value") for m in _get(f"{url}?{query}", timeout_s)}


_UNANSWERED = (OSError, ValueError, KeyError, TypeError)
_PROGRESS = re.compile(f"{_CURRENT.pattern}|{_PENDING.pattern}")


def source_progress(
    settings: Settings, flink_job: FlinkJob, timeout_s: float = 1.0
) -> SourceProgress:
    """The job's Kafka positions per partition and its pending records (empty on no answer)."""
    positions: dict[TopicPartition, int] = {}
    pending: int | None = None
    for vertex in flink_job.source_vertices:
        try:
            values = _vertex_metrics(settings, flink_job, vertex, _PROGRESS, timeout_s)
        except _UNANSWERED:
            continue
        for name, value in values.items():
            number = _number(value)
            if number is None:
                continue
            current = _CURRENT.match(name)
            if current is not None:
                key = (current["topic"], int(current["p"]))
                positions[key] = max(positions.get(key, -1), number)
            elif _PENDING.match(name):
                pending = (pending or 0) + number
    return SourceProgress(positions, pending)


def records_read(settings: Settings, flink_job: FlinkJob, timeout_s: float = 1.0) -> int | None:
    """How many records the job's sources have read since it started, every subtask summed
    (None when the API does not answer or has no figure yet). Unlike the committed offsets,
    which move at each checkpoint, this is at most a second old (`metrics.fetcher.update-interval`
    in rules/engine.py)."""
    total: int | None = None
    for vertex in flink_job.source_vertices:
        try:
            values = _vertex_metrics(settings, flink_job, vertex, _SOURCE_OUT, timeout_s)
        except _UNANSWERED:
            return None
        if values:
            numbers = (_number(v) for v in values.values())
            total = (total or 0) + sum(n for n in numbers if n is not None)
    return total


def _number(value: object) -> int | None:
    try:
        number = int(float(str(value)))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
