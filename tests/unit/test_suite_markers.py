"""The suite's own promises: `-m "not integration and not e2e"` never starts a stack, and the
private stacks' ports never collide."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

from streamguard.bench import private_stack
from streamguard.bench.private_stack import _picked_port_taken, free_ports

TESTS = Path(__file__).resolve().parents[1]
MARKER = {"integration": "integration", "e2e": "e2e", "browser": "browser"}


def module_marks(path: Path) -> set[str]:
    """The marks of a module's `pytestmark = pytest.mark.X` (or a list of them)."""
    marks: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            marks |= {v.attr for v in values if isinstance(v, ast.Attribute)}
    return marks


@pytest.mark.parametrize("folder", sorted(MARKER))
def test_every_stack_test_module_carries_its_marker(folder: str) -> None:
    modules = sorted((TESTS / folder).glob("test_*.py"))
    assert modules
    unmarked = [m.name for m in modules if MARKER[folder] not in module_marks(m)]
    assert unmarked == []


@pytest.mark.parametrize("folder", ["browser", "e2e"])
def test_every_module_that_starts_a_stack_is_an_integration_test(folder: str) -> None:
    # so that `pytest -m "not integration"` starts no stack at all
    modules = sorted((TESTS / folder).glob("test_*.py"))
    assert modules
    assert [m.name for m in modules if "integration" not in module_marks(m)] == []


def test_free_ports_are_distinct_free_and_outside_the_ephemeral_range() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        ports = free_ports(6)
        assert len(set(ports)) == 6
        assert all(10_000 <= port < ephemeral_low for port in ports), ports
        for port in ports:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        spare = [p for p in range(20_000, 20_100) if p != taken]
        monkeypatch.setattr(
            private_stack.random, "sample", lambda population, k: [taken, taken, *spare][:k]
        )
        ports = free_ports(3)
    assert taken not in ports and len(set(ports)) == 3


def test_only_a_taken_port_of_its_own_makes_the_stack_try_new_ports() -> None:
    env = {"STREAMGUARD_KAFKA_PORT": "20001", "STREAMGUARD_PG_PORT": "20002", "PATH": "/bin"}
    said = "kafka: port 20001 is already\n in use. Stop whatever listens there"
    assert _picked_port_taken(said, env, extra=None)
    assert not _picked_port_taken(said, env, extra={"STREAMGUARD_KAFKA_PORT": "20001"})
    assert not _picked_port_taken("rules (Flink) did not start", env, extra=None)
