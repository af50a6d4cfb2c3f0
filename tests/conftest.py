"""Shared fixtures: real stacks started by the project's own code, each shared by the modules
that ask for it, started at its first test and stopped after its last."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack

import pytest

from tests.stackfixture import StackHandle, running_stack

#: The JVMs of a test (Kafka, Flink, the tools) live seconds to minutes on little data: the
#: quick C1 compiler alone starts them sooner and idles them cheaper, and changes no result.
TEST_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


class SharedStacks:
    """The stacks several modules share, by fixture name: started when first asked for, stopped
    after the last test that uses them, so that no idle stack competes with later modules."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[ExitStack, StackHandle]] = {}
        self.last_user: dict[str, str] = {}  # fixture name -> the node id it stops after

    def get(
        self, name: str, start: Callable[[], AbstractContextManager[StackHandle]]
    ) -> StackHandle:
        if name not in self._open:
            with ExitStack() as held:
                handle = held.enter_context(start())
                self._open[name] = (held.pop_all(), handle)
        return self._open[name][1]

    def stop(self, name: str) -> None:
        held, _ = self._open.pop(name, (None, None))
        if held is not None:
            held.close()

    def stop_after(self, item: pytest.Item) -> None:
        for name in [n for n, last in self.last_user.items() if last == item.nodeid]:
            self.stop(name)

    def stop_all(self) -> None:
        for name in list(self._open):
            self.stop(name)


#: In the order their users run: each stack's modules one after the other, then the rest.
SHARED = ("console_stack", "stack", "infra")
_shared = SharedStacks()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("JAVA_TOOL_OPTIONS", TEST_JAVA_OPTIONS)  # inherited by every process


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of each shared stack together (each keeps its tests' order, and modules
    their relative order), so that each stack starts once and stops before the next group."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def group(tests: list[pytest.Item]) -> int:
        used = {name for test in tests for name in test.fixturenames}
        return min((SHARED.index(name) for name in used if name in SHARED), default=len(SHARED))

    ordered = sorted(modules.values(), key=group)  # a stable sort
    items[:] = [item for tests in ordered for item in tests]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Each shared stack stops after the last test of the last module that uses it (its module
    fixtures, built on the stack, are gone by then)."""
    module_of = {item.nodeid: item.nodeid.split("::")[0] for item in session.items}
    last_of_module = {module_of[item.nodeid]: item.nodeid for item in session.items}
    for item in session.items:
        for name in SHARED:
            if name in item.fixturenames:
                _shared.last_user[name] = last_of_module[module_of[item.nodeid]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    result = yield  # the test's own fixtures first: they may still use the stack
    _shared.stop_after(item)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    _shared.stop_all()  # after an interrupted or -x run, what is still up


@pytest.fixture(scope="module")
def infra() -> StackHandle:
    """PostgreSQL (migrated) and Kafka (topics made) only, for tests that run their own services."""
    return _shared.get("infra", lambda: running_stack(only="postgres,kafka"))


@pytest.fixture(scope="module")
def console_stack() -> StackHandle:
    """PostgreSQL (migrated) and the console, on free ports: the console needs nothing else."""
    return _shared.get("console_stack", lambda: running_stack(only="postgres,console"))


@pytest.fixture(scope="module")
def stack() -> StackHandle:
    """The whole pipeline: PostgreSQL, Kafka, the Flink rules job, decide and the console."""
    return _shared.get("stack", running_stack)
