"""Start a real StreamGuard stack for tests: free ports, its own state folder, stopped after.

Tests never touch a developer's running stack: every port is picked free at start and the state
folder is a fresh temporary one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamguard.bench.private_stack import (
    PrivateStack,
    free_port,
    private_env,
    private_stack,
    settings_from,
)

__all__ = ["StackHandle", "free_port", "running_stack", "settings_from", "stack_env"]


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


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """STREAMGUARD_* variables for a private stack on free ports, sized for tests."""
    return private_env(state_dir, inherit=False, extra=TEST_SIZING | extra)


@contextmanager
def running_stack(
    only: str = "postgres,kafka,rules,decide,console", **extra: str
) -> Iterator[StackHandle]:
    """Start the stack through the CLI, sized for tests, yield it, then stop it and wipe it."""
    with private_stack(
        only, inherit=False, extra=TEST_SIZING | extra, prefix="streamguard-test-"
    ) as stack:
        yield stack
