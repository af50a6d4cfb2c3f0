"""The load: the project's own generator, run as a separate process through its CLI.

A separate process keeps the generator's CPU off the benchmark's sampling loop and makes it a
component whose CPU and memory are measured like the others. The benchmark counts what reached
Kafka from the topic's offsets, never from the generator's word.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streamguard.domain.models import Transaction

#: The rate that stands for "as fast as the generator can".
FLAT_OUT_RATE = 10_000_000


def generator_argv(rate: int, seed: int) -> list[str]:
    """The generator command at `rate` tx/s (0: flat out), until SIGTERM."""
    del seed  # the throwaway generator takes none; issue 3's generator will
    return [
        sys.executable,
        "-m",
        "streamguard.cli.main",
        "generate",
        "--rate",
        str(rate or FLAT_OUT_RATE),
    ]


def start_generator(
    rate: int, seed: int, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start the generator in its own session, logging to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            generator_argv(rate, seed),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_generator(process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    """SIGTERM (the generator flushes what it holds), SIGKILL if it will not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


def sample_transactions(count: int, seed: int) -> Sequence[Transaction]:
    """Transactions shaped like the generator's, as payloads for the raw-limit tests."""
    from streamguard.generate.simple import random_transaction

    rng = random.Random(seed)
    return [random_transaction(rng) for _ in range(count)]
