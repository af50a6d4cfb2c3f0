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

# The console's API docs (/docs) use swagger-ui, fetched pinned from npm and checked here;
# it is never committed (the folder is ignored) and the pages load nothing from elsewhere.
SWAGGER_UI_VERSION=5.32.0
SWAGGER_UI_SHA256=3c30bfe83d09763d14b4c88df0beade8ca162087a2fa5db3f34472f231ab3ba9
vendor=src/streamguard/console/static/vendor/swagger-ui
if [ ! -f "$vendor/.version-$SWAGGER_UI_VERSION" ]; then
  command -v npm >/dev/null || apt_install npm
  echo "fetching swagger-ui-dist $SWAGGER_UI_VERSION (npm pack)…"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" >/dev/null)
  echo "$SWAGGER_UI_SHA256  $tmp/swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" | sha256sum -c --quiet
  rm -rf "$vendor" && mkdir -p "$vendor"
  tar -xzf "$tmp/swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" -C "$vendor" --strip-components=1 \
    package/swagger-ui-bundle.js package/swagger-ui.css package/LICENSE
  touch "$vendor/.version-$SWAGGER_UI_VERSION"
  rm -rf "$tmp"
fi

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
