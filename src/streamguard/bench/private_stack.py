"""A private StreamGuard stack: free ports, its own state folder, started by the CLI, stopped after.

The benchmark (and the tests) never touch a developer's running stack or its default ports.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamguard.config import Settings

#: Settings a private stack always sets itself: where it lives and which ports it takes.
PRIVATE_KEYS = (
    "STREAMGUARD_STATE_DIR",
    "STREAMGUARD_KAFKA_PORT",
    "STREAMGUARD_KAFKA_CONTROLLER_PORT",
    "STREAMGUARD_PG_PORT",
    "STREAMGUARD_FLINK_UI_PORT",
    "STREAMGUARD_KAFKA_BOOTSTRAP",
    "STREAMGUARD_DATABASE_URL",
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_env(
    state_dir: Path,
    *,
    inherit: bool = True,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """STREAMGUARD_* variables for a private local stack on free ports.

    With `inherit`, the caller's other STREAMGUARD_* settings (heaps, parallelism, rule
    parameters) carry over, so a benchmark can try them; ports and places never do.
    """
    source = dict(os.environ if base is None else base)
    env = {
        k: v
        for k, v in source.items()
        if not k.startswith("STREAMGUARD_") or (inherit and k not in PRIVATE_KEYS)
    }
    env.update(
        {
            "STREAMGUARD_STATE_DIR": str(state_dir),
            "STREAMGUARD_KAFKA_PORT": str(free_port()),
            "STREAMGUARD_KAFKA_CONTROLLER_PORT": str(free_port()),
            "STREAMGUARD_PG_PORT": str(free_port()),
            "STREAMGUARD_FLINK_UI_PORT": str(free_port()),
            **(extra or {}),
        }
    )
    return env


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings that a process started with `env` would read."""
    values: dict[str, object] = {
        k.removeprefix("STREAMGUARD_").lower(): v
        for k, v in env.items()
        if k.startswith("STREAMGUARD_")
    }
    if "rule_params" in values:
        values["rule_params"] = json.loads(str(values["rule_params"]))
    return Settings(_env_file=None, **values)  # type: ignore[arg-type,call-arg]


@dataclass(frozen=True)
class PrivateStack:
    """A running private stack: its environment (for subprocesses) and settings (for us)."""

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
            raise RuntimeError(
                f"streamguard {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result


@contextmanager
def private_stack(
    only: str = "",
    *,
    keep: bool = False,
    inherit: bool = True,
    extra: Mapping[str, str] | None = None,
    prefix: str = "streamguard-bench-",
) -> Iterator[PrivateStack]:
    """Start a stack in a fresh temporary folder, yield it, then stop it and delete its data.

    `only` is a comma-separated list of components (empty: all of them). With `keep`, the state
    folder (logs included) survives for a post-mortem.
    """
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    state_dir.chmod(0o755)  # the PostgreSQL cluster's owner must reach its data folder
    env = private_env(state_dir, inherit=inherit, extra=extra)
    stack = PrivateStack(env, settings_from(env))
    try:
        result = stack.cli("up", *(["--only", only] if only else []), check=False, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"streamguard up failed:\n{result.stdout}\n{result.stderr}")
        yield stack
    finally:
        stack.cli("down", "--keep" if keep else "--wipe", "--yes", check=False, timeout=180)
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)
