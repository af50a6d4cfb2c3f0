"""The local stack through its CLI: status, idempotent start, clear errors, clean stop."""

from __future__ import annotations

import json
import socket
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamguard.stack.process import pid_alive
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration


def test_status_lists_every_component_with_pid_and_port(stack: StackHandle) -> None:
    out = stack.cli("status").stdout
    for name in ("postgres", "kafka", "rules", "decide-1", "console"):
        line = next(line for line in out.splitlines() if f" {name} " in line)
        assert "running" in line
    assert str(stack.settings.kafka_port) in out
    assert str(stack.settings.flink_ui_port) in out
    assert str(stack.settings.console_port) in out
    assert "job RUNNING" in out


def test_second_up_finds_the_stack_running(stack: StackHandle) -> None:
    result = stack.cli("up")
    assert "already up" in result.stdout
    assert "starting" not in result.stdout


def test_topics_command_lists_the_pipeline_topics(stack: StackHandle) -> None:
    out = stack.cli("kafka", "topics").stdout
    for topic in ("transactions", "fraud_alerts", "fraud_decisions", "dead_letters"):
        assert topic in out


@pytest.mark.parametrize(
    ("only", "setting"),
    [
        ("kafka", "STREAMGUARD_KAFKA_PORT"),
        ("kafka", "STREAMGUARD_KAFKA_CONTROLLER_PORT"),
        ("postgres", "STREAMGUARD_PG_PORT"),
        ("rules", "STREAMGUARD_FLINK_UI_PORT"),
        ("console", "STREAMGUARD_CONSOLE_PORT"),
    ],
)
def test_a_taken_port_fails_with_the_port_and_its_setting(only: str, setting: str) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            with running_stack(only=only, **{setting: str(port)}):
                raise AssertionError("the stack started on a taken port")
        except RuntimeError as exc:
            message = " ".join(str(exc).split())  # the terminal may wrap the line
    assert f"port {port} is already in use" in message
    assert f"{setting}=<port>" in message


def test_down_leaves_no_process_behind() -> None:
    with running_stack(only="postgres,kafka") as small:
        rows = small.cli("status").stdout
        pids = [
            int(word)
            for line in rows.splitlines()
            for word in line.split("│")[3:4]
            if word.strip().isdigit()
        ]
        assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
        out = small.cli("down", "--keep").stdout
        assert "stopped kafka" in out and "stopped postgres" in out
        assert not any(pid_alive(pid) for pid in pids)


def test_status_and_topics_print_json_for_scripts(stack: StackHandle) -> None:
    status = {row["component"]: row for row in json.loads(stack.cli("status", "--json").stdout)}
    assert {"postgres", "kafka", "rules", "decide-1"} <= status.keys()
    assert all(status[name]["state"] == "running" for name in ("postgres", "kafka", "decide-1"))
    assert status["kafka"]["port"] == stack.settings.kafka_port
    assert pid_alive(status["decide-1"]["pid"])
    listed = json.loads(stack.cli("kafka", "topics", "--json").stdout)
    partitions = {row["topic"]: row["partitions"] for row in listed}
    assert partitions["transactions"] == stack.settings.transactions_partitions
    assert partitions["fraud_alerts"] == stack.settings.alerts_partitions


def test_logs_shows_each_components_log_and_one_by_name(stack: StackHandle) -> None:
    every = stack.cli("logs", "-n", "3").stdout
    logs = stack.settings.state_path / "logs"
    for name in ("kafka", "rules", "decide-1", "console"):
        assert f"==> {logs / name}.log <==" in every
    decide = stack.cli("logs", "decide", "-n", "1000").stdout
    assert "consuming" in decide and "==>" not in decide  # one file: tail prints no header
    missing = stack.cli("logs", "no-such-component", check=False)
    assert missing.returncode == 1 and "No logs in" in missing.stdout


def test_kafka_tail_prints_partition_offset_key_value_and_headers(stack: StackHandle) -> None:
    topic = f"tail-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.settings.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": stack.settings.bootstrap_servers})
    producer.produce(topic, key=b"ACC1", value=b'{"n": 1}', headers=[("reason", b"why")])
    producer.produce(topic, key=b"ACC2", value=b'{"n": 2}')
    assert producer.flush(30) == 0
    out = stack.cli("kafka", "tail", topic, "--from-beginning", "-n", "2", timeout=60).stdout
    assert out.splitlines() == ["0:0 ACC1 {\"n\": 1} {'reason': 'why'}", '0:1 ACC2 {"n": 2}']
