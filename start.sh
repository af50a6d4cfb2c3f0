#!/usr/bin/env bash
# Start the whole pipeline (installing what is missing), then show where to look.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/streamguard up --generator-rate "${STREAMGUARD_GENERATOR_RATE:-20}"
.venv/bin/streamguard where
if [ -t 0 ] && [ -t 1 ]; then
  read -r -p "Follow the live logs now? [y/N] " answer
  case "$answer" in
    [yY]*) exec .venv/bin/streamguard logs --follow ;;
  esac
fi
