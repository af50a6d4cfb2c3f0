"""The local Kafka broker: single node, KRaft, combined broker and controller."""

from __future__ import annotations

import subprocess

from streamguard.config import Settings
from streamguard.kafka import topics
from streamguard.stack import runtime
from streamguard.stack.process import (
    Paths,
    StackError,
    port_in_use,
    require_free_port,
    spawn,
    wait_until,
)

NAME = "kafka"
START_TIMEOUT_S = 90


def server_properties(settings: Settings) -> str:
    """The broker's configuration for a single-node KRaft cluster."""
    data = settings.state_path / "kafka" / "data"
    port, controller = settings.kafka_port, settings.kafka_controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=localhost:{controller}",
            f"listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=PLAINTEXT://localhost:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=24",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def _java(settings: Settings, *args: str, heap_mb: int = 256) -> list[str]:
    paths = Paths(settings.state_path)
    return [
        runtime.java_executable(),
        f"-Xmx{heap_mb}m",
        f"-Djava.io.tmpdir={settings.state_path / 'kafka' / 'tmp'}",
        f"-Dlog4j2.configurationFile={runtime.template_path('log4j2.properties')}",
        f"-Dkafka.logs.dir={paths.logs}",
        "-cp",
        runtime.kafka_classpath(settings),
        *args,
    ]


def format_storage(settings: Settings) -> None:
    """Write server.properties and format the log folder once (KRaft needs a cluster id)."""
    folder = settings.state_path / "kafka"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    props = folder / "server.properties"
    props.write_text(server_properties(settings))
    if (folder / "data" / "meta.properties").exists():
        return
    cluster_id = (
        subprocess.run(
            _java(settings, "kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    result = subprocess.run(
        _java(
            settings,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-g",
            "-t",
            cluster_id,
            "-c",
            str(props),
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"kafka: formatting {folder / 'data'} failed:\n{result.stdout}{result.stderr}"
        )


def start(settings: Settings) -> int:
    """Format if needed, start the broker, wait until it answers, create the topics."""
    require_free_port(settings.kafka_port, "STREAMGUARD_KAFKA_PORT", NAME)
    require_free_port(settings.kafka_controller_port, "STREAMGUARD_KAFKA_CONTROLLER_PORT", NAME)
    format_storage(settings)
    paths = Paths(settings.state_path)
    argv = _java(
        settings,
        "kafka.Kafka",
        str(settings.state_path / "kafka" / "server.properties"),
        heap_mb=settings.kafka_heap_mb,
    )
    argv[1:2] = [
        f"-Xmx{settings.kafka_heap_mb}m",
        f"-Xms{settings.kafka_heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
    ]
    pid = spawn(NAME, argv, paths)
    wait_until(
        lambda: ready(settings),
        timeout_s=START_TIMEOUT_S,
        component=NAME,
        log=paths.log(NAME),
        pid=pid,
        interval_s=1.0,
    )
    create_topics(settings)
    return pid


def ready(settings: Settings) -> bool:
    """True when the broker listens and answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    if not port_in_use(settings.kafka_port):
        return False
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})
    try:
        admin.list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - any failure means not ready yet
        return False
    return True


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic and its partition count."""
    return {
        topics.TRANSACTIONS: settings.transactions_partitions,
        topics.FRAUD_ALERTS: settings.alerts_partitions,
        topics.FRAUD_DECISIONS: settings.decisions_partitions,
        topics.DEAD_LETTERS: 1,
        topics.LABELS: settings.transactions_partitions,
    }


def create_topics(settings: Settings) -> list[str]:
    """Create the missing topics; broker append time stamps every record for latency."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            name,
            num_partitions=count,
            replication_factor=1,
            config={"message.timestamp.type": "LogAppendTime"},
        )
        for name, count in topic_partitions(settings).items()
        if name not in existing
    ]
    if not wanted:
        return []
    for name, future in admin.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StackError(f"kafka: creating topic {name} failed: {exc}") from exc
    return [topic.topic for topic in wanted]
