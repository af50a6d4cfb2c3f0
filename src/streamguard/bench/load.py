"""The load: the project's own generator, run as a separate process through its CLI.

A separate process keeps the generator's CPU off the benchmark's sampling loop and makes it a
component whose CPU and memory are measured like the others. The benchmark counts what reached
Kafka from the topic's offsets, never from the generator's word.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streamguard.domain.models import Transaction

#: The rate that stands for "as fast as the generator can" (stream mode keeps event time = now).
FLAT_OUT_RATE = 10_000_000
#: The generator keeps a legitimate account's transactions 21 s apart (so that legitimate
#: traffic cannot trip HIGH_VELOCITY); it needs about this many accounts per tx/s to manage.
ACCOUNTS_PER_TX_S = 32
MIN_ACCOUNTS = 10_000
FLAT_OUT_ACCOUNTS = 640_000


def accounts_for(rate: int) -> int:
    """A population large enough for `rate` tx/s of realistic legitimate traffic."""
    return max(MIN_ACCOUNTS, (rate or FLAT_OUT_ACCOUNTS // ACCOUNTS_PER_TX_S) * ACCOUNTS_PER_TX_S)


def generator_argv(rate: int, seed: int, accounts: int | None = None) -> list[str]:
    """The generator's stream mode at `rate` tx/s (0: flat out), stamped now, until SIGTERM.

    With short card tests (63-69 s from the first charge to the cash-out, instead of up to
    4 minutes), so that card_testing episodes complete within a step; see bench/quality.py
    for how the step counts them."""
    return [
        sys.executable,
        "-m",
        "streamguard.cli.main",
        "generate",
        "stream",
        "--rate",
        str(rate or FLAT_OUT_RATE),
        "--seed",
        str(seed),
        "--accounts",
        str(accounts or accounts_for(rate)),
        "--short-card-tests",
    ]


def start_generator(
    rate: int, seed: int, env: dict[str, str], log: Path, accounts: int | None = None
) -> subprocess.Popen[bytes]:
    """Start the generator in its own session, logging to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            generator_argv(rate, seed, accounts),
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
    """Transactions shaped exactly like the generator's, as payloads for the raw-limit tests."""
    from streamguard.generate import sample_transactions as sample

    return sample(count, seed)


def blocklist() -> dict[str, tuple[str, ...]]:
    """The ids that the generator's blocklist scenario uses, by entity type."""
    from streamguard.generate.blocklist import blocked_ids

    return blocked_ids()
