"""Start a real StreamGuard stack for tests: free ports, its own state folder, stopped after.

Tests never touch a developer's running stack: every port is picked free at start and the state
folder is a fresh temporary one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamguard.bench.private_stack import free_port, private_env, settings_from
from streamguard.config import Settings

__all__ = ["StackHandle", "free_port", "running_stack", "settings_from", "stack_env"]


@dataclass(frozen=True)
class StackHandle:
    """A running stack: its environment (for subprocesses) and its settings (for the test)."""

    env: dict[str, str]
    settings: Settings

    def cli(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `streamguard ARGS` against this stack; with `check`, fail showing its output."""
        result = subprocess.run(
            [sys.executable, "-m", "streamguard.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"streamguard {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """STREAMGUARD_* variables for a private stack on free ports, sized for tests."""
    return private_env(
        state_dir,
        inherit=False,
        extra={
            "STREAMGUARD_KAFKA_HEAP_MB": "384",
            "STREAMGUARD_FLINK_HEAP_MB": "768",
            "STREAMGUARD_CHECKPOINT_INTERVAL_S": "2",
            "STREAMGUARD_WATERMARK_DELAY_S": "1",
            "STREAMGUARD_IDLE_TIMEOUT_S": "1",
            **extra,
        },
    )


@contextmanager
def running_stack(only: str = "postgres,kafka,rules,ledger", **extra: str) -> Iterator[StackHandle]:
    """Start the stack through the CLI, yield it, then stop it and delete its data."""
    state_dir = Path(tempfile.mkdtemp(prefix="streamguard-test-"))
    state_dir.chmod(0o755)  # the PostgreSQL cluster's owner must reach its data folder
    env = stack_env(state_dir, **extra)
    stack = StackHandle(env, settings_from(env))
    try:
        result = stack.cli("up", "--only", only, check=False, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"streamguard up failed:\n{result.stdout}\n{result.stderr}")
        yield stack
    finally:
        stack.cli("down", "--wipe", "--yes", check=False, timeout=180)
        shutil.rmtree(state_dir, ignore_errors=True)
