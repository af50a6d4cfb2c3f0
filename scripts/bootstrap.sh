#!/usr/bin/env bash
# Installs what StreamGuard needs and is missing: a Java 17 JDK (the rules' own SQL functions
# are compiled on first use), Maven and Chromium (for the console's browser tests; Debian
# packages), then a
# virtualenv in .venv with the package. PostgreSQL 15 is installed by `streamguard up` when the
# local cluster needs it; the Kafka and Flink connector jars are fetched by Maven into ~/.m2.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $* missing; install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  echo "installing $* (apt-get)…"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
command -v mvn >/dev/null || apt_install maven
# The console's browser tests drive Debian's Chromium through Playwright (never a browser
# download of Playwright's own).
[ -x /usr/bin/chromium ] || apt_install chromium

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "error: StreamGuard needs Python 3.10 or newer ($PYTHON is $("$PYTHON" --version))" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv…"
  "$PYTHON" -m venv .venv || { apt_install python3-venv; "$PYTHON" -m venv .venv; }
fi
stamp=.venv/.streamguard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing the streamguard package into .venv (first run takes about a minute)…"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,bench]'
  touch "$stamp"
fi
