"""One stream-mode run for `bench_generator.py --stream`, in a process of its own.

    PYTHONPATH=<tree>/src python benchmarks/generator_stream_run.py RATE SECONDS ACCOUNTS SEED

`streamguard` is whichever tree PYTHONPATH names, so that two trees run the same harness. The run
is the CLI's own (`streamguard generate stream --rate RATE --duration-s SECONDS`, its sink and
producer profile included), against the broker that the STREAMGUARD_* environment names. Only
`modes.run_paced` is timed: the population's build and the imports are left out. The last line of
stdout is JSON: transactions, cpu_s (user + system of the whole process, librdkafka's threads
included), wall_s and exit_code.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from streamguard.generate import modes, run
from streamguard.generate.engine import GeneratorConfig


def cpu_s() -> float:
    """User + system CPU seconds of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    rate, seconds, accounts, seed = float(sys.argv[1]), float(sys.argv[2]), *map(int, sys.argv[3:5])
    measured: dict[str, Any] = {}
    paced = modes.run_paced

    def timed(*args: Any, **kwargs: Any) -> modes.RunStats:
        cpu_before, began = cpu_s(), time.perf_counter()
        stats = paced(*args, **kwargs)
        measured.update(
            transactions=stats.transactions,
            cpu_s=round(cpu_s() - cpu_before, 3),
            wall_s=round(time.perf_counter() - began, 3),
        )
        return stats

    modes.run_paced = timed  # run.paced calls it through the module: the CLI's path, timed
    options = run.RunOptions(config=GeneratorConfig(accounts=accounts), seed=seed, quiet=True)
    code = run.paced(options, rate=rate, follow_cycle=False, duration_s=seconds)
    print(json.dumps({**measured, "exit_code": code}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
