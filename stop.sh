#!/usr/bin/env bash
# Stop every process of the stack, then ask whether to wipe its data (--wipe --yes: no question).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/streamguard ]; then
  echo "Nothing to stop: StreamGuard was never started here."
  exit 0
fi
exec .venv/bin/streamguard down "$@"
