"""The JVM runtime: resolve the Kafka and Flink connector jars with Maven, find Java."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from streamguard.config import Settings
from streamguard.stack.process import StackError


def pom_path() -> Path:
    """The pom.xml that lists every jar the stack runs."""
    return Path(str(resources.files("streamguard.stack") / "templates" / "pom.xml"))


def template_path(name: str) -> Path:
    """A packaged template file, such as the broker's log4j2 configuration."""
    return Path(str(resources.files("streamguard.stack") / "templates" / name))


def java_executable() -> str:
    """The java on PATH, or a clear error."""
    java = shutil.which("java")
    if java is None:
        raise StackError("java not found on PATH: install a Java 17 runtime")
    return java


def classpath_file(state_path: Path) -> Path:
    """Where a state folder caches the classpath that Maven resolved for it."""
    return state_path / "runtime" / "classpath.txt"


def classpath(settings: Settings) -> list[Path]:
    """Every jar of the runtime pom, resolved once by Maven and cached in the state folder."""
    cache = classpath_file(settings.state_path)
    pom = pom_path()
    if not cache.exists() or cache.stat().st_mtime < pom.stat().st_mtime:
        _resolve(pom, cache)
    jars = [Path(entry) for entry in cache.read_text().strip().split(":") if entry]
    if not jars or not all(jar.exists() for jar in jars):
        _resolve(pom, cache)
        jars = [Path(entry) for entry in cache.read_text().strip().split(":") if entry]
    return jars


def _resolve(pom: Path, cache: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn not found on PATH: install Maven (apt-get install maven)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:build-classpath",
            f"-Dmdep.outputFile={cache}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"Maven could not resolve the runtime jars (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def kafka_classpath(settings: Settings) -> str:
    """The classpath of the broker and kafka-tools, without the Flink connector."""
    return ":".join(str(jar) for jar in classpath(settings) if "flink" not in jar.name)


def flink_connector_jar(settings: Settings) -> Path:
    """The Flink SQL Kafka connector jar."""
    for jar in classpath(settings):
        if jar.name.startswith("flink-sql-connector-kafka"):
            return jar
    raise StackError("flink-sql-connector-kafka is missing from the runtime pom")
