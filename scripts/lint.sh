#!/usr/bin/env bash
# The static checks CI runs before the tests: ruff's lint and format, and mypy on the package.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src
