"""Start a real StreamGuard stack for tests: free ports, its own state folder, stopped after.

Tests never touch a developer's running stack: every port is picked free at start and the state
folder is a fresh temporary one.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from streamguard.bench.private_stack import (
    PrivateStack,
    copy_classpath,
    free_port,
    private_env,
    private_stack,
    settings_from,
)
from streamguard.config import Settings
from streamguard.stack import runtime

__all__ = [
    "StackHandle",
    "free_port",
    "running_stack",
    "settings_from",
    "stack_env",
    "with_classpath",
]


#: A running stack: its environment (for subprocesses) and its settings (for the test).
StackHandle = PrivateStack


#: Small heaps and short timers: tests feed little data and want alerts fast.
TEST_SIZING = {
    "STREAMGUARD_KAFKA_HEAP_MB": "384",
    "STREAMGUARD_FLINK_HEAP_MB": "768",
    "STREAMGUARD_CHECKPOINT_INTERVAL_S": "2",
    "STREAMGUARD_WATERMARK_DELAY_S": "1",
    "STREAMGUARD_IDLE_TIMEOUT_S": "1",
}


@cache
def resolved_classpath() -> Path:
    """The runtime's classpath, resolved by Maven once a test session (a JVM run of seconds that
    every fresh state folder would otherwise repeat)."""
    folder = Path(tempfile.mkdtemp(prefix="streamguard-test-runtime-"))
    atexit.register(shutil.rmtree, folder, True)
    runtime.classpath(Settings(_env_file=None, state_dir=folder))  # type: ignore[call-arg]
    return runtime.classpath_file(folder)


def with_classpath(state_dir: Path) -> Path:
    """`state_dir`, given the session's resolved classpath (see resolved_classpath)."""
    copy_classpath(resolved_classpath(), state_dir)
    return state_dir


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """STREAMGUARD_* variables for a private stack on free ports, sized for tests."""
    return private_env(state_dir, inherit=False, extra=TEST_SIZING | extra)


@contextmanager
def running_stack(
    only: str = "postgres,kafka,rules,decide,console", **extra: str
) -> Iterator[StackHandle]:
    """Start the stack through the CLI, sized for tests, yield it, then stop it and wipe it."""
    with private_stack(
        only,
        inherit=False,
        extra=TEST_SIZING | extra,
        prefix="streamguard-test-",
        classpath=resolved_classpath(),
    ) as stack:
        yield stack
