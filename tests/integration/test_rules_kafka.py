"""The rules job on live Kafka: configuration, bad input, restart from a checkpoint, ad-hoc SQL
and deployment to a standalone Flink cluster started from the apache-flink package's own files.

One private stack (Kafka and the rules job) serves the module; every test uses its own accounts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from streamguard.domain.models import FraudAlert, Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.rules.engine import latest_checkpoint
from streamguard.stack.process import Paths, pid_alive, read_pid, tail
from streamguard.stack.services import flink_job_state
from tests.factories import make_transaction
from tests.flinkcluster import standalone_cluster
from tests.integration.sqlrows import SqlRows
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

LOCAL_THRESHOLD = "2000.00"
#: The bursts here must be stamped now, and R$ 5,000 now is also NIGHT_SPENDING at night in São
#: Paulo: above any amount sent here, that rule never fires, so every test takes one path at any
#: hour (its hours are tested in test_rules_engine.py on pinned event times).
NO_NIGHT = {"NIGHT_SPENDING.min_amount_brl": "1000000.00"}


@pytest.fixture(scope="module")
def rules_stack() -> Iterator[StackHandle]:
    """Kafka and the rules job, with HIGH_AMOUNT's threshold moved by configuration."""
    params = json.dumps({"HIGH_AMOUNT.threshold_brl": LOCAL_THRESHOLD, **NO_NIGHT})
    with running_stack(
        only="kafka,rules", STREAMGUARD_RULE_PARAMS=params, STREAMGUARD_FLINK_HEAP_MB="512"
    ) as stack:
        yield stack


class AlertLog:
    """Every alert on `fraud_alerts` since the start, by alert id (duplicates counted)."""

    def __init__(self, stack: StackHandle) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": stack.settings.bootstrap_servers,
                "group.id": f"test-alerts-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topics.FRAUD_ALERTS])
        self.seen: dict[str, list[FraudAlert]] = {}

    def poll(self) -> None:
        for message in self.consumer.consume(500, timeout=0.5):
            if message.error() is None:
                alert = FraudAlert.model_validate_json(message.value())
                self.seen.setdefault(alert.alert_id, []).append(alert)

    def wait_for(
        self, alert_ids: set[str], timeout_s: float, tick: Callable[[], None] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not alert_ids <= self.seen.keys():
            self.poll()
            if tick is not None:
                tick()
        missing = alert_ids - self.seen.keys()
        assert not missing, f"alerts never arrived: {sorted(missing)}"

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def alert_log(rules_stack: StackHandle) -> Iterator[AlertLog]:
    log = AlertLog(rules_stack)
    yield log
    log.close()


def make_tx(account_id: str, amount: str, ts_ms: int, label: str) -> Transaction:
    """The shared factory's transaction, with the id `{account_id}-{label}` the alerts name."""
    return make_transaction(
        transaction_id=f"{account_id}-{label}",
        account_id=account_id,
        amount=Decimal(amount),
        ts_ms=ts_ms,
    )


def send(stack: StackHandle, *messages: Transaction | bytes) -> None:
    producer = Producer(producer_config(stack.settings))
    for message in messages:
        if isinstance(message, Transaction):
            producer.produce(topics.TRANSACTIONS, key=message.account_id, value=message.to_wire())
        else:
            producer.produce(topics.TRANSACTIONS, key=b"garbage", value=message)
    assert producer.flush(30) == 0


def test_threshold_from_configuration_and_malformed_input_never_stop_the_job(
    rules_stack: StackHandle, alert_log: AlertLog
) -> None:
    run = uuid.uuid4().hex[:6]
    now = int(time.time() * 1000)
    account = f"CFG-{run}"
    send(
        rules_stack,
        b"not json at all",
        b"\xff\xfe\x00binary",
        b'{"transaction_id": "x", "amount": "lots", "ts_ms": "yesterday"}',
        b'{"transaction_id": "y", "account_id": "z", "amount": 9999.99}',
        b"[1, 2, 3]",
        make_tx(account, "2000.00", now, "equal"),
        make_tx(account, "2000.01", now + 1, "over"),
    )
    alert_log.wait_for({f"HIGH_AMOUNT:{account}-over"}, timeout_s=60)
    alert = alert_log.seen[f"HIGH_AMOUNT:{account}-over"][0]
    assert alert.evidence["threshold_brl"] == LOCAL_THRESHOLD
    assert alert.ts_ms == now + 1
    assert f"HIGH_AMOUNT:{account}-equal" not in alert_log.seen
    assert not any(a.startswith("HIGH_AMOUNT:y") for a in alert_log.seen)
    assert flink_job_state(rules_stack.settings) == "RUNNING"


def test_sql_prints_rows_as_they_arrive(rules_stack: StackHandle) -> None:
    run = uuid.uuid4().hex[:6]
    account = f"SQL-{run}"
    now = int(time.time() * 1000)
    send(rules_stack, make_tx(account, "10.50", now, "a"), make_tx(account, "20.25", now + 1, "b"))
    query = f"SELECT transaction_id, amount, ts FROM transactions WHERE account_id = '{account}'"
    with SqlRows(rules_stack, query, "--from-beginning", "-n", "3") as rows:
        assert rows.line(timeout_s=120).split(" | ") == ["op", "transaction_id", "amount", "ts\n"]
        assert rows.line(timeout_s=60).startswith(f"+I | {account}-a | 10.50 | ")
        assert rows.line(timeout_s=60).startswith(f"+I | {account}-b | 20.25 | ")
        # The query is still running: a row sent now is printed while it runs.
        send(rules_stack, make_tx(account, "30.00", now + 2, "c"))
        assert rows.line(timeout_s=60).startswith(f"+I | {account}-c | 30.00 | ")
        assert rows.wait(timeout_s=60) == 0


def _completed_checkpoint_after(stack: StackHandle, moment_ms: int, timeout_s: float) -> None:
    ui = f"http://localhost:{stack.settings.flink_ui_port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{ui}/jobs/overview", timeout=5) as response:
            jobs = [j for j in json.load(response)["jobs"] if j["state"] == "RUNNING"]
        with urllib.request.urlopen(f"{ui}/jobs/{jobs[0]['jid']}/checkpoints", timeout=5) as r:
            completed = (json.load(r).get("latest") or {}).get("completed") or {}
        if completed.get("trigger_timestamp", 0) > moment_ms:
            return
        time.sleep(0.5)
    raise AssertionError("no checkpoint completed")


def test_restart_resumes_from_the_last_checkpoint(
    rules_stack: StackHandle, alert_log: AlertLog
) -> None:
    run = uuid.uuid4().hex[:6]
    account, other = f"REC-{run}", f"REC-{run}-down"
    t0 = int(time.time() * 1000)
    send(
        rules_stack,
        make_tx(account, "10.00", t0, "t1"),
        make_tx(account, "10.00", t0 + 1000, "t2"),
        make_tx(account, "5000.00", t0 + 2000, "t3"),
    )
    alert_log.wait_for({f"HIGH_AMOUNT:{account}-t3"}, timeout_s=60)
    _completed_checkpoint_after(rules_stack, int(time.time() * 1000), timeout_s=60)

    # A crash: the rules process and its JVM die at once, with no chance to clean up.
    paths = Paths(rules_stack.settings.state_path)
    pid = read_pid(paths.pidfile("rules"))
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert latest_checkpoint(rules_stack.settings) is not None

    # While it is down: the 4th transaction of the burst, and an alert-worthy one elsewhere,
    # stamped when they happen (now). No other traffic follows: the restarted job's heartbeats
    # close the window, after it has read this backlog.
    down = int(time.time() * 1000)
    assert down - t0 < 60_000, "too slow for one HIGH_VELOCITY window"
    send(
        rules_stack,
        make_tx(account, "10.00", down, "t4"),
        make_tx(other, "6000.00", down, "t1"),
    )
    rules_stack.cli("up", "--only", "kafka,rules", timeout=300)
    try:
        alert_log.wait_for({f"HIGH_VELOCITY:{account}-t4", f"HIGH_AMOUNT:{other}-t1"}, timeout_s=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nrules log:\n{tail(paths.log('rules'), 60)}") from exc
    # The burst began with a transaction read before the crash: the pattern's state came back.
    evidence = alert_log.seen[f"HIGH_VELOCITY:{account}-t4"][0].evidence
    assert evidence["first_transaction_id"] == f"{account}-t1"
    assert "resuming from checkpoint" in tail(paths.log("rules"), 400)


def test_deploy_to_a_standalone_cluster(
    rules_stack: StackHandle, alert_log: AlertLog, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    account = f"REMOTE-{run}"
    with standalone_cluster(tmp_path) as cluster:
        # Thresholds only the remote job has: a stateless rule, and a windowed one that reads
        # account_history, built from StreamGuard's own Java aggregates: the job must bring
        # their jar to the cluster, whose classpath has only Flink's own.
        remote_params = {
            "HIGH_AMOUNT.threshold_brl": "100",
            "HIGH_VELOCITY.min_count": "2",
            **NO_NIGHT,
        }
        env = {**rules_stack.env, "STREAMGUARD_RULE_PARAMS": json.dumps(remote_params)}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamguard.cli.main",
                "rules",
                "deploy",
                "--remote",
                cluster.address,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        job_id = json.loads(result.stdout.strip().splitlines()[-1])["job_id"]
        cluster.wait_running(job_id, timeout_s=120)
        now = int(time.time() * 1000)
        send(
            rules_stack,
            make_tx(account, "150.00", now, "t1"),
            make_tx(account, "10.00", now + 100, "t2"),
        )
        # Only the remote job has a threshold of 100 (the local one stops at 2000) and counts
        # two transactions as a burst (the local one needs four).
        expected = {f"HIGH_AMOUNT:{account}-t1", f"HIGH_VELOCITY:{account}-t2"}
        try:
            alert_log.wait_for(expected, timeout_s=90)
        except AssertionError as exc:
            state = cluster.get(f"/jobs/{job_id}")["state"]
            raise AssertionError(f"{exc}\nthe remote job is {state}") from exc
        alert = alert_log.seen[f"HIGH_AMOUNT:{account}-t1"][0]
        assert alert.evidence["threshold_brl"] == "100"
        burst = alert_log.seen[f"HIGH_VELOCITY:{account}-t2"][0].evidence
        assert burst["count"] == "2" and burst["first_transaction_id"] == f"{account}-t1"
        assert cluster.get(f"/jobs/{job_id}")["state"] == "RUNNING"
        cluster.cancel(job_id)
