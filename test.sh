#!/usr/bin/env bash
# The whole test suite: unit, integration (real Kafka, Flink, PostgreSQL) and end-to-end.
# Extra arguments go to pytest, e.g. ./test.sh tests/unit -q
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
