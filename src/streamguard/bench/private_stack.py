"""A private StreamGuard stack: free ports, its own state folder, started by the CLI, stopped after.

The benchmark (and the tests) never touch a developer's running stack or its default ports.
"""

from __future__ import annotations

import json
import os
import random
import re
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
from streamguard.stack import runtime

#: Settings a private stack always sets itself: where it lives and which ports it takes.
PRIVATE_KEYS = (
    "STREAMGUARD_STATE_DIR",
    "STREAMGUARD_KAFKA_PORT",
    "STREAMGUARD_KAFKA_CONTROLLER_PORT",
    "STREAMGUARD_PG_PORT",
    "STREAMGUARD_FLINK_UI_PORT",
    "STREAMGUARD_CONSOLE_PORT",
    "STREAMGUARD_KAFKA_BOOTSTRAP",
    "STREAMGUARD_DATABASE_URL",
)


#: How many times a private stack picks new ports when one it picked was taken meanwhile.
PORT_ATTEMPTS = 3

_TAKEN = re.compile(r"port (\d+) is already in use")


def _below_ephemeral() -> range:
    """Ports under the kernel's ephemeral range: no outgoing connection and no bind(0) of
    another process is ever given one, so a port picked here stays free until its user binds."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(10_000, low - 12_000), low)


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports nobody listens on right now.

    Each is held bound until all are picked, so none is handed out twice, and they come from
    below the ephemeral range at random, so that neither the kernel nor a concurrent caller
    (another test session on the machine) is likely to take one before it is used.
    """
    candidates = _below_ephemeral()
    held: list[socket.socket] = []
    try:
        for port in random.sample(candidates, min(len(candidates), 50 * count)):
            if len(held) == count:
                break
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        while len(held) < count:  # an unusual ephemeral range: let the kernel choose
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def free_port() -> int:
    """A TCP port nobody listens on right now (see free_ports)."""
    return free_ports(1)[0]


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
    kafka, controller, pg, flink_ui, console = free_ports(5)
    env = {
        k: v
        for k, v in source.items()
        if not k.startswith("STREAMGUARD_") or (inherit and k not in PRIVATE_KEYS)
    }
    env.update(
        {
            "STREAMGUARD_STATE_DIR": str(state_dir),
            "STREAMGUARD_KAFKA_PORT": str(kafka),
            "STREAMGUARD_KAFKA_CONTROLLER_PORT": str(controller),
            "STREAMGUARD_PG_PORT": str(pg),
            "STREAMGUARD_FLINK_UI_PORT": str(flink_ui),
            "STREAMGUARD_CONSOLE_PORT": str(console),
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
    classpath: Path | None = None,
) -> Iterator[PrivateStack]:
    """Start a stack in a fresh temporary folder, yield it, then stop it and delete its data.

    `only` is a comma-separated list of components (empty: all of them). With `keep`, the state
    folder (logs included) survives for a post-mortem. `classpath` is a classpath file that Maven
    resolved before (the tests resolve once a session), copied in so that `up` need not run Maven
    again; `up` still checks it against the pom and the jars. If a port this function picked was
    taken before the stack bound it, it starts again on new ports. A failed stop, or a wipe that
    left data behind, raises: a test or a benchmark must not pass over a stack it could not stop.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        state_dir = Path(tempfile.mkdtemp(prefix=prefix))
        state_dir.chmod(0o755)  # the PostgreSQL cluster's owner must reach its data folder
        if classpath is not None:
            copy_classpath(classpath, state_dir)
        env = private_env(state_dir, inherit=inherit, extra=extra)
        stack = PrivateStack(env, settings_from(env))
        result = stack.cli("up", *(["--only", only] if only else []), check=False, timeout=600)
        if result.returncode == 0:
            break
        _stop(stack, state_dir, keep=keep)
        if attempt == PORT_ATTEMPTS or not _picked_port_taken(result.stdout, env, extra):
            raise RuntimeError(f"streamguard up failed:\n{result.stdout}\n{result.stderr}")
    try:
        yield stack
    finally:
        _stop(stack, state_dir, keep=keep)


def copy_classpath(source: Path, state_dir: Path) -> None:
    """Give `state_dir` a classpath file resolved elsewhere (see runtime.classpath)."""
    target = runtime.classpath_file(state_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _picked_port_taken(
    output: str, env: Mapping[str, str], extra: Mapping[str, str] | None
) -> bool:
    """True when `up` failed on a port that private_env picked (not one the caller chose)."""
    chosen = {v for k, v in (extra or {}).items() if k.endswith("_PORT")}
    picked = {v for k, v in env.items() if k.endswith("_PORT")} - chosen
    return any(port in picked for port in _TAKEN.findall(" ".join(output.split())))


#: What `down --wipe` deletes (services.wipe); it must be gone afterwards.
_DATA = ("kafka", "postgres", "flink")


def _stop(stack: PrivateStack, state_dir: Path, *, keep: bool) -> None:
    """`down` (with --wipe unless `keep`), checked; then the rest of the folder goes."""
    stack.cli("down", "--keep" if keep else "--wipe", "--yes", timeout=180)
    if keep:
        return
    left = [name for name in _DATA if (state_dir / name).exists()]
    if left:
        raise RuntimeError(f"streamguard down --wipe left {', '.join(left)} in {state_dir}")
    shutil.rmtree(state_dir)
