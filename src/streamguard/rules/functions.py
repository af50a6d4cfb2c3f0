"""StreamGuard's own Flink SQL functions: Java aggregates, compiled once into a cached jar.

Flink's built-in event-time operators (a MATCH_RECOGNIZE, a RANGE OVER window) each keep their
own copy of an account's recent rows, sort them again and set a timer per row. Four such rules
cost four times that: about 16,000 tx/s for the whole catalog on two cores. These aggregates let
one unbounded OVER window per account feed every per-account rule (`views/account_history.sql`):
each keeps only what its window needs. The jar is built against the installed pyflink's own
jars, so it always matches the engine it runs in, and it travels to a remote cluster with the
job (`pipeline.jars`). The jar also holds `CollectedRows`, which hands a query's rows to
Python in bulk (`collected_rows`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

#: SQL name -> Java class. Every rule and ad-hoc query sees them as temporary system functions.
FUNCTIONS = {
    "WINDOW_STATS": "io.streamguard.flink.WindowStats",
    "PREVIOUS_LOCATION": "io.streamguard.flink.PreviousLocation",
    "PREVIOUS_AMOUNT": "io.streamguard.flink.PreviousAmount",
    "PARSE_EVENT_MS": "io.streamguard.flink.ParseEventMs",
}


class FunctionsBuildError(RuntimeError):
    """The functions jar could not be compiled."""


def sources() -> list[Path]:
    """The Java sources, in a stable order."""
    root = Path(str(resources.files("streamguard.rules") / "functions"))
    return sorted(root.rglob("*.java"))


def flink_lib() -> Path:
    """The installed pyflink's jars: the API the functions compile against."""
    import pyflink

    return Path(pyflink.__file__).parent / "lib"


def cache_dir() -> Path:
    """Where built jars are kept across runs and stacks (the user's cache, like ~/.m2)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamguard"


def functions_jar() -> Path:
    """The jar of the functions, built on first use and whenever a source or pyflink changes."""
    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(",".join(sorted(p.name for p in flink_lib().glob("*.jar"))).encode())
    jar = cache_dir() / f"streamguard-functions-{digest.hexdigest()[:16]}.jar"
    if not jar.exists():
        _build(jar)
    return jar


def _build(jar: Path) -> None:
    javac = shutil.which("javac")
    if javac is None:
        raise FunctionsBuildError(
            "javac not found on PATH: the rules need a Java 17 JDK "
            "(apt-get install openjdk-17-jdk-headless)"
        )
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamguard-functions-") as work:
        classes = Path(work) / "classes"
        result = subprocess.run(
            [javac, "--release", "11", "-nowarn", "-encoding", "UTF-8"]
            + ["-cp", f"{flink_lib()}/*", "-d", str(classes)]
            + [str(path) for path in sources()],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise FunctionsBuildError(f"javac failed:\n{result.stdout}{result.stderr}")
        partial = Path(work) / jar.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for path in sorted(classes.rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
        # Built aside and moved in one step, so two processes building at once never see half.
        aside = jar.with_name(f"{jar.name}.{os.getpid()}.tmp")
        shutil.move(str(partial), aside)
        aside.replace(jar)


def register_functions(env: Any) -> None:
    """Declare the functions in a table environment (whose pipeline.jars hold the jar)."""
    for name, class_name in FUNCTIONS.items():
        env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{class_name}'")


#: Rows handed over per gateway call by collected_rows.
ROWS_PER_CALL = 5_000


def collected_rows(result: Any) -> list[list[Any]]:
    """Every row of a TableResult (its job run to the end), fetched ROWS_PER_CALL at a time.

    pyflink's own iterator makes about a dozen gateway calls per row: collecting 19,000 alerts
    that way kept the Python side busy for the whole backtest and held its job back.
    `CollectedRows` (in the jar) hands rows over as JSON lines instead; a decimal arrives as
    its string, a map as a dict.
    """
    from pyflink.java_gateway import get_gateway

    fetch = get_gateway().jvm.io.streamguard.flink.CollectedRows
    rows = result._j_table_result.collect()
    found: list[list[Any]] = []
    try:
        while chunk := fetch.next(rows, ROWS_PER_CALL):
            # "\n" only: str.splitlines would also split at a U+2028 inside a value
            found.extend(json.loads(line) for line in chunk.split("\n") if line)
    finally:
        rows.close()
    return found
