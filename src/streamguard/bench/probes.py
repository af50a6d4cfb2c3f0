"""What the benchmark watches while the load runs: offsets, lag, CPU and memory per component.

Offsets come from Kafka (what was produced), from PostgreSQL's consumer_offsets (what `decide`
and any other exactly-once consumer have committed). The Flink rules job's position is what its
sources have read, from the job's metrics through the REST API (at most a second old), or,
before the job reports any, the offsets it commits to Kafka at each checkpoint (coarse).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from streamguard.config import Settings
from streamguard.kafka import topics
from streamguard.rules.rest import FlinkJob
from streamguard.stack.process import Paths, read_pid

RULES_GROUP = "streamguard-rules"
JOB = "streamguard-rules"
#: Pseudo-components: the whole machine, and whatever ran outside the stack and the generator.
MACHINE = "machine"
OUTSIDE = "outside"


@dataclass
class ProgressSample:
    """One second's view of the pipeline."""

    at_s: float
    produced: int
    alerts_produced: int
    committed: dict[str, int] = field(default_factory=dict)
    resources: dict[str, tuple[float, float]] = field(default_factory=dict)
    rules_state: str | None = None
    rules_restarts: int | None = None
    rules_live: bool = False  # the rules job's position came from its metrics, not a checkpoint

    def lag(self, group: str) -> int | None:
        """How many transactions the group has yet to commit."""
        done = self.committed.get(group)
        return None if done is None else max(0, self.produced - done)


class OffsetProbe:
    """Reads end offsets from Kafka and committed offsets from Kafka and PostgreSQL."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from streamguard.store.db import connect

        self._tp = TopicPartition
        self.settings = settings
        self.consumer = Consumer(
            {"bootstrap.servers": settings.bootstrap_servers, "group.id": RULES_GROUP}
        )
        self.conn = connect(settings, autocommit=True)
        self._job: FlinkJob | None = None
        self.partitions = {
            name: list(range(count))
            for name, count in (
                (topics.TRANSACTIONS, settings.transactions_partitions),
                (topics.FRAUD_ALERTS, settings.alerts_partitions),
                (topics.LABELS, settings.transactions_partitions),
            )
        }

    def end_offset(self, topic: str) -> int:
        """The sum of the topic's high watermarks: how many records were ever appended."""
        total = 0
        for partition in self.partitions[topic]:
            _, high = self.consumer.get_watermark_offsets(
                self._tp(topic, partition), timeout=5, cached=False
            )
            total += max(high, 0)
        return total

    def committed(self) -> dict[str, int]:
        """Offsets committed on `transactions` by each consumer group (for the rules job, the
        Kafka-committed ones; `rules_read` is its live position)."""
        rows = self.conn.execute(
            "SELECT group_id, sum(next_offset) FROM consumer_offsets WHERE topic = %s"
            " GROUP BY group_id",
            (topics.TRANSACTIONS,),
        ).fetchall()
        result = {group: int(total) for group, total in rows}
        tps = [self._tp(topics.TRANSACTIONS, p) for p in self.partitions[topics.TRANSACTIONS]]
        try:
            marks = self.consumer.committed(tps, timeout=5)
            result[RULES_GROUP] = sum(max(tp.offset, 0) for tp in marks)
        except Exception:  # noqa: BLE001 - the rules job has not committed yet
            pass
        return result

    def rules_job(self) -> tuple[str | None, int | None]:
        """The Flink rules job's state and restart count from its REST API (None: no answer)."""
        base = f"http://localhost:{self.settings.flink_ui_port}"
        try:
            with urllib.request.urlopen(f"{base}/jobs/overview", timeout=1) as response:
                jobs = [j for j in json.load(response).get("jobs", []) if j.get("name") == JOB]
            if not jobs:
                return None, None
            job = sorted(jobs, key=lambda j: j.get("start-time", 0))[-1]
            url = f"{base}/jobs/{job['jid']}/metrics?get=numRestarts"
            with urllib.request.urlopen(url, timeout=1) as response:
                values = {m["id"]: m["value"] for m in json.load(response)}
            restarts = values.get("numRestarts")
            return job.get("state"), int(float(restarts)) if restarts is not None else None
        except (OSError, ValueError, KeyError):
            return None, None

    def rules_read(self) -> int | None:
        """What the rules job's sources have read since the job started (None: no figure).

        After a restart the count starts again from the restored checkpoint, so it is then
        below the committed offsets until it passes them: `sample` takes the larger."""
        from streamguard.rules import rest

        # The job and its source vertices are asked for once, not each second: a new job (a
        # restarted rules process) makes the metrics call fail, and the next sample asks again.
        if self._job is None:
            found = rest.job(self.settings)
            if found is None or found.state != "RUNNING":
                return None
            self._job = found
        read = rest.records_read(self.settings, self._job)
        if read is None:
            self._job = None
        return read

    def close(self) -> None:
        """Release the Kafka and PostgreSQL connections."""
        self.consumer.close()
        self.conn.close()


class ResourceProbe:
    """CPU and RSS of each component's process tree, found through the stack's PID files."""

    def __init__(self, state_path: Path, extra: dict[str, int] | None = None) -> None:
        self.paths = Paths(state_path)
        self.extra = dict(extra or {})
        self._known: dict[int, psutil.Process] = {}
        psutil.cpu_percent(None)

    def components(self) -> dict[str, int]:
        """Every live component: name to PID (the PID files, plus the benchmark's own)."""
        found = {}
        for pidfile in sorted(self.paths.run.glob("*.pid")):
            pid = read_pid(pidfile)
            if pid is not None:
                found[pidfile.stem] = pid
        found.update({name: pid for name, pid in self.extra.items() if psutil.pid_exists(pid)})
        return found

    def _process(self, pid: int) -> psutil.Process:
        # cpu_percent needs the same Process object between calls to measure an interval.
        if pid not in self._known:
            self._known[pid] = psutil.Process(pid)
            self._known[pid].cpu_percent(None)
        return self._known[pid]

    def sample(self) -> dict[str, tuple[float, float]]:
        """(CPU % of one core, RSS MB) of each component, children included."""
        result = {}
        for name, pid in self.components().items():
            cpu = rss = 0.0
            try:
                root = self._process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in tree:
                try:
                    proc = self._process(proc.pid)
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss / 1e6
                except psutil.Error:
                    self._known.pop(proc.pid, None)
            result[name] = (round(cpu, 1), round(rss, 1))
        machine_cpu = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
        used_mb = (psutil.virtual_memory().total - psutil.virtual_memory().available) / 1e6
        ours = sum(cpu for cpu, _ in result.values())
        # what else ran on the machine meanwhile: other users' work skews every figure
        result[OUTSIDE] = (round(max(0.0, machine_cpu - ours), 1), 0.0)
        result[MACHINE] = (round(machine_cpu, 1), round(used_mb, 1))
        return result


def sample(offsets: OffsetProbe, resources: ResourceProbe) -> ProgressSample:
    """One progress sample."""
    state, restarts = offsets.rules_job()
    committed = offsets.committed()
    read, live = offsets.rules_read(), False
    if read is not None and read >= committed.get(RULES_GROUP, 0):
        committed[RULES_GROUP], live = read, True
    return ProgressSample(
        at_s=time.time(),
        produced=offsets.end_offset(topics.TRANSACTIONS),
        alerts_produced=offsets.end_offset(topics.FRAUD_ALERTS),
        committed=committed,
        resources=resources.sample(),
        rules_state=state,
        rules_restarts=restarts,
        rules_live=live,
    )


def as_dict(sample_: ProgressSample) -> dict[str, Any]:
    """A sample as JSON."""
    return {
        "at_s": round(sample_.at_s, 3),
        "produced": sample_.produced,
        "alerts_produced": sample_.alerts_produced,
        "committed": sample_.committed,
        "resources": {k: list(v) for k, v in sample_.resources.items()},
        "rules_state": sample_.rules_state,
        "rules_restarts": sample_.rules_restarts,
        "rules_live": sample_.rules_live,
    }
