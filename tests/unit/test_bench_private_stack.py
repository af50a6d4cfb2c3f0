"""The private stack's environment: free ports and its own folder, never the caller's places."""

from __future__ import annotations

from pathlib import Path

from streamguard.bench.load import accounts_for, generator_argv
from streamguard.bench.private_stack import private_env, settings_from

CALLER = {
    "PATH": "/usr/bin",
    "STREAMGUARD_PG_PORT": "5432",
    "STREAMGUARD_KAFKA_BOOTSTRAP": "broker.example:9092",
    "STREAMGUARD_DATABASE_URL": "postgresql://someone@db.example/prod",
    "STREAMGUARD_FLINK_PARALLELISM": "2",
}


def test_private_env_never_inherits_places_or_ports() -> None:
    env = private_env(Path("/tmp/bench-x"), base=CALLER)
    assert env["PATH"] == "/usr/bin"
    assert env["STREAMGUARD_STATE_DIR"] == "/tmp/bench-x"
    assert env["STREAMGUARD_PG_PORT"] != "5432"
    assert "STREAMGUARD_KAFKA_BOOTSTRAP" not in env
    assert "STREAMGUARD_DATABASE_URL" not in env
    # tuning carries over, so a benchmark can try it
    assert env["STREAMGUARD_FLINK_PARALLELISM"] == "2"
    ports = {env[k] for k in env if k.endswith("_PORT")}
    assert len(ports) == 5  # Kafka, its controller, PostgreSQL, the Flink UI, the console
    assert "STREAMGUARD_CONSOLE_PORT" in env


def test_private_env_without_inheritance_and_with_extras() -> None:
    env = private_env(
        Path("/tmp/t"), base=CALLER, inherit=False, extra={"STREAMGUARD_KAFKA_HEAP_MB": "384"}
    )
    assert "STREAMGUARD_FLINK_PARALLELISM" not in env
    settings = settings_from(env)
    assert settings.kafka_heap_mb == 384
    assert settings.runs_local_kafka and settings.runs_local_postgres
    assert settings.state_path == Path("/tmp/t")


def test_generator_population_grows_with_the_rate() -> None:
    assert accounts_for(300) == 10_000
    assert accounts_for(20_000) == 640_000
    argv = generator_argv(5000, seed=7)
    assert argv[argv.index("--rate") + 1] == "5000"
    assert argv[argv.index("--seed") + 1] == "7"
    assert argv[argv.index("--accounts") + 1] == "160000"
    flat_out = generator_argv(0, seed=7, accounts=50_000)
    assert int(flat_out[flat_out.index("--rate") + 1]) > 1_000_000
    assert flat_out[flat_out.index("--accounts") + 1] == "50000"
