"""The private stack's environment: free ports and its own folder, never the caller's places."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from streamguard.bench import private_stack
from streamguard.bench.load import accounts_for, generator_argv
from streamguard.bench.private_stack import free_ports, private_env, settings_from

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
    assert "--short-card-tests" in argv  # card tests that fit a step (bench/quality.py)
    flat_out = generator_argv(0, seed=7, accounts=50_000)
    assert int(flat_out[flat_out.index("--rate") + 1]) > 1_000_000
    assert flat_out[flat_out.index("--accounts") + 1] == "50000"


class Binds:
    """Every port bound through `private_stack`'s sockets, and each one found free again while
    a later one was being bound (a port released before all are picked)."""

    def __init__(self) -> None:
        self.bound: list[int] = []
        self.released_early: set[int] = set()


def _taken(port: int) -> bool:
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


@pytest.fixture
def binds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Binds]:
    """Real sockets for `private_stack`, which check at each bind that the ports it bound
    before are still bound by it."""
    seen = Binds()

    class Watched(socket.socket):
        def bind(self, address: object) -> None:
            seen.released_early |= {port for port in seen.bound if not _taken(port)}
            super().bind(address)  # type: ignore[arg-type]
            seen.bound.append(self.getsockname()[1])

    monkeypatch.setattr(private_stack, "socket", SimpleNamespace(socket=Watched))
    yield seen


def test_free_ports_holds_every_port_until_all_are_picked(binds: Binds) -> None:
    ports = free_ports(5)
    assert ports == binds.bound and len(set(ports)) == 5
    assert binds.released_early == set(), "a port was let go before the others were picked"
    assert not any(_taken(port) for port in ports), "the ports must be free for their user"


def test_free_ports_lets_the_kernel_choose_when_the_range_is_all_taken(
    binds: Binds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no free port below the ephemeral range, the kernel's picks (bind to port 0) are
    held just the same, so it cannot hand the same one out twice."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        monkeypatch.setattr(private_stack, "_below_ephemeral", lambda: range(port, port + 1))
        ports = free_ports(3)
    finally:
        taken.close()
    assert port not in ports and len(set(ports)) == 3
    assert binds.released_early == set()


def test_private_env_picks_its_five_ports_in_one_go(binds: Binds) -> None:
    env = private_env(Path("/tmp/t"), base=CALLER)
    ports = [int(env[k]) for k in env if k.endswith("_PORT")]
    assert sorted(ports) == sorted(binds.bound) and len(set(ports)) == 5
    assert binds.released_early == set(), "a port was let go before the other four were picked"
