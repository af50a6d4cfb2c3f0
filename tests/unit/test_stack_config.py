"""Pure parts of the local stack: settings, broker properties, PID handling."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streamguard.config import LOCAL_DEFAULT_PASSWORD, Settings
from streamguard.stack import kafka_server
from streamguard.stack.process import StackError, pid_alive, read_pid, require_free_port, stop_pid


def test_local_defaults_build_the_documented_urls(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.db_url == "postgresql://streamguard:streamguard_2024@localhost:5432/streamguard"
    assert settings.runs_local_kafka and settings.runs_local_postgres


def test_external_services_are_used_as_given() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        kafka_bootstrap="k1:9092,k2:9092",
        database_url=SecretStr("postgresql://u:p@db:5432/x"),
        app_pg_password=SecretStr("from-the-vault"),
    )
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.db_url == "postgresql://u:p@db:5432/x"
    assert not settings.runs_local_kafka and not settings.runs_local_postgres
    assert "u:p" not in repr(settings)


def test_a_server_refuses_the_local_default_password_for_the_service_role() -> None:
    server = SecretStr("postgresql://u:p@db:5432/x")
    with pytest.raises(ValidationError, match="STREAMGUARD_APP_PG_PASSWORD"):
        Settings(_env_file=None, database_url=server)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="local default password"):
        Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=server, app_pg_password=SecretStr(LOCAL_DEFAULT_PASSWORD)
        )
    chosen = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=server, pg_password=SecretStr("owner-secret")
    )
    assert "owner-secret" in chosen.app_db_url


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMGUARD_KAFKA_PORT", "19092")
    monkeypatch.setenv("STREAMGUARD_RULE_PARAMS", '{"HIGH_AMOUNT.threshold_brl": "5000"}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.bootstrap_servers == "localhost:19092"
    assert settings.rule_params == {"HIGH_AMOUNT.threshold_brl": "5000"}


def test_broker_properties_single_node_kraft(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        state_dir=tmp_path,
        kafka_port=1111,  # type: ignore[call-arg]
        kafka_controller_port=2222,
    )
    props = dict(
        line.split("=", 1) for line in kafka_server.server_properties(settings).split("\n") if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://localhost:1111,CONTROLLER://localhost:2222"
    assert props["advertised.listeners"] == "PLAINTEXT://localhost:1111"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1"


def test_a_taken_port_names_the_setting_that_moves_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} is already in use.*STREAMGUARD_X_PORT"):
            require_free_port(port, "STREAMGUARD_X_PORT", "x")


def test_stop_pid_ends_the_process_and_its_group(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time;"
            "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
            "print(p.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    grandchild = int(child.stdout.readline())  # type: ignore[union-attr]
    pidfile = tmp_path / "x.pid"
    pidfile.write_text(f"{child.pid}\n")
    assert read_pid(pidfile) == child.pid
    stop_pid(child.pid, timeout_s=5)
    child.wait(5)
    assert not pid_alive(child.pid)
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(grandchild)
    assert read_pid(pidfile) is None


def test_an_empty_database_url_means_the_local_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMGUARD_DATABASE_URL", "")
    assert Settings(_env_file=None).runs_local_postgres  # type: ignore[call-arg]


def test_decision_instances_have_one_name_each_and_stray_pid_files_count(tmp_path: Path) -> None:
    from streamguard.stack import services
    from streamguard.stack.process import Paths

    settings = Settings(_env_file=None, state_dir=tmp_path, decision_instances=3)  # type: ignore[call-arg]
    assert services.decide_names(settings) == ["decide-1", "decide-2", "decide-3"]
    assert services.decide_names(settings, 1) == ["decide-1"]
    paths = Paths(settings.state_path)
    paths.ensure()
    paths.pidfile("decide-12").write_text("1\n")  # started earlier with more instances
    assert services._decide_present(settings) == ["decide-1", "decide-2", "decide-3", "decide-12"]
    paths.pidfile("ledger").write_text("1\n")  # the old first instance; rename: keep
    assert "ledger" in services._decide_present(settings)  # rename: keep
    with pytest.raises(ValueError):
        Settings(_env_file=None, decision_instances=0)  # type: ignore[call-arg]


def test_a_setting_under_its_old_name_is_refused_naming_the_new_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMGUARD_LEDGER_BATCH_SIZE", "5000")  # old name; rename: keep
    with pytest.raises(ValidationError, match="STREAMGUARD_DECIDE_BATCH_SIZE"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("STREAMGUARD_LEDGER_BATCH_SIZE")  # rename: keep
    assert Settings(_env_file=None).decide_batch_size == 20_000  # type: ignore[call-arg]
    monkeypatch.chdir(tmp_path)  # a .env file is read from the working folder
    old = "STREAMGUARD_LEDGER_INSTANCE_ID=ledger-7"  # rename: keep
    (tmp_path / ".env").write_text(f"# old\n{old}\n")
    with pytest.raises(ValidationError, match="STREAMGUARD_DECIDE_INSTANCE_ID"):
        Settings()
