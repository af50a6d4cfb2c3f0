#!/usr/bin/env bash
# The end-to-end benchmark (issue 6): `streamguard bench` on a private stack, one run at a time
# on this machine (the lock keeps two benchmarks from sharing the CPUs).
# Extra arguments go to `streamguard bench`, e.g.: benchmarks/bench_pipeline.sh --rate 5000 -d 30
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/streamguard-bench.lock .venv/bin/streamguard bench --out benchmarks/results "$@"
