"""Shared fixtures: real stacks started by the project's own code, one per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stackfixture import StackHandle, running_stack


@pytest.fixture(scope="session")
def infra() -> Iterator[StackHandle]:
    """PostgreSQL (migrated) and Kafka (topics made) only, for tests that run their own services."""
    with running_stack(only="postgres,kafka") as stack:
        yield stack


@pytest.fixture(scope="session")
def console_stack() -> Iterator[StackHandle]:
    """PostgreSQL (migrated) and the console, on free ports: the console needs nothing else."""
    with running_stack(only="postgres,console") as stack:
        yield stack


@pytest.fixture(scope="session")
def stack() -> Iterator[StackHandle]:
    """The whole pipeline: PostgreSQL, Kafka, the Flink rules job, decide and the console."""
    with running_stack() as stack:
        yield stack
