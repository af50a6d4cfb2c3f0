"""The whole local stack: start in order with a readiness check each, report, stop by PID."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from streamguard.config import Settings
from streamguard.stack import kafka_server, postgres_server
from streamguard.stack.process import (
    Paths,
    StackError,
    pid_alive,
    read_pid,
    require_free_port,
    stop_pidfile,
    wait_until,
)
from streamguard.stack.supervise import read_state, spawn_supervised

RULES = "rules"
DECIDE = "decide"
CONSOLE = "console"
GENERATOR = "generator"
RULES_START_TIMEOUT_S = 120
DECIDE_START_TIMEOUT_S = 60
CONSOLE_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `streamguard status`."""

    name: str
    state: str
    pid: int | None
    port: int | None
    detail: str = ""
    rss_mib: float | None = None
    restarts: int | None = None  # by its supervisor; None when it has none
    last_exit: str = ""


def resident_mib(pid: int | None) -> float | None:
    """Resident memory of a process and its children (a JVM under Python counts), in MiB."""
    if pid is None:
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.Error:
        return None


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _supervised(
    settings: Settings, name: str, argv: list[str], env: dict[str, str] | None = None
) -> int:
    """Start a component under its supervisor (restarted when it dies); the supervisor's PID."""
    return spawn_supervised(
        name,
        argv,
        Paths(settings.state_path),
        env=env,
        max_restarts=settings.supervisor_max_restarts,
        first_delay_s=settings.supervisor_first_delay_s,
    )


def _written_since(log: Path, offset: int) -> str:
    """What a log got after `offset`: this run's lines, not a previous run's."""
    try:
        with log.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def flink_job_state(settings: Settings) -> str | None:
    """The state of the rules job according to the Flink REST API (the embedded cluster's, or
    STREAMGUARD_FLINK_REMOTE's), or None if it does not answer."""
    from streamguard.rules import rest

    job = rest.job(settings, timeout_s=2)
    return None if job is None else job.state


def start_rules(settings: Settings) -> int:
    """The embedded Flink mini-cluster running every rule as one job; with
    STREAMGUARD_FLINK_REMOTE, the process that submits it to that cluster (rules/remote.py)."""
    if not settings.flink_remote:
        require_free_port(settings.flink_ui_port, "STREAMGUARD_FLINK_UI_PORT", RULES)
    paths = Paths(settings.state_path)
    pid = _supervised(
        settings,
        RULES,
        _python_module("streamguard.rules.runner"),
        env={"FLINK_LOG_DIR": str(paths.logs)},
    )
    wait_until(
        lambda: flink_job_state(settings) == "RUNNING",
        timeout_s=RULES_START_TIMEOUT_S,
        component="rules (Flink)",
        log=paths.log(RULES),
        pid=pid,
        interval_s=1.0,
    )
    return pid


def decide_names(settings: Settings, count: int | None = None) -> list[str]:
    """The decision instances' names (PID file, log, status row): decide-1, ..., decide-N."""
    count = count or settings.decision_instances
    return [f"{DECIDE}-{i}" for i in range(1, count + 1)]


#: The decision instances' names before the component took the one name `decide`: a stack
#: started by an older version still stops (`down`, or `up`, which stops unwanted instances).
OLD_DECIDE_NAMES = ("ledger", "ledger-*")  # rename: keep


def _decide_present(settings: Settings) -> list[str]:
    """The configured instances and any other whose PID file is there (started with more)."""
    run = Paths(settings.state_path).run
    found = {path.stem for path in run.glob(f"{DECIDE}-*.pid")}
    found |= {path.stem for old in OLD_DECIDE_NAMES for path in run.glob(f"{old}.pid")}
    return sorted(set(decide_names(settings)) | found, key=lambda n: (len(n), n))


def start_decide(settings: Settings, name: str = f"{DECIDE}-1") -> int:
    """One decision instance (`decide-1`, `decide-2`, ...): its own group.instance.id and log.

    The first takes its id from the setting, so that each machine of a cluster can name its own.
    """
    paths = Paths(settings.state_path)
    log = paths.log(name)
    offset = log.stat().st_size if log.exists() else 0
    instance_id = settings.decide_instance_id if name == f"{DECIDE}-1" else name
    pid = _supervised(
        settings,
        name,
        _python_module("streamguard.decide"),
        env={"STREAMGUARD_DECIDE_INSTANCE_ID": instance_id},
    )
    wait_until(
        lambda: "consuming" in _written_since(log, offset),
        timeout_s=DECIDE_START_TIMEOUT_S,
        component=name,
        log=log,
        pid=pid,
    )
    return pid


def console_healthy(settings: Settings) -> bool:
    """True when the console answers its health check (it reached PostgreSQL as its role)."""
    url = f"http://{_probe_host(settings.console_host)}:{settings.console_port}/api/v1/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host


def start_console(settings: Settings) -> int:
    """The web console and REST API (uvicorn), ready when its health check answers."""
    require_free_port(settings.console_port, "STREAMGUARD_CONSOLE_PORT", CONSOLE)
    paths = Paths(settings.state_path)
    pid = _supervised(settings, CONSOLE, _python_module("streamguard.console"))
    wait_until(
        lambda: console_healthy(settings),
        timeout_s=CONSOLE_START_TIMEOUT_S,
        component=CONSOLE,
        log=paths.log(CONSOLE),
        pid=pid,
    )
    return pid


def start_generator(settings: Settings, rate: int) -> int:
    """The generator's stream mode: a steady `rate` tx/s with labelled fraud."""
    argv = [*_python_module("streamguard.cli.main"), "generate", "stream", "--rate", str(rate)]
    return _supervised(settings, GENERATOR, argv)


def migrate(settings: Settings) -> list[str]:
    """Apply the schema migrations, then (re)grant the services' least-privilege role."""
    from streamguard.store.db import connect
    from streamguard.store.migrate import migrate as apply
    from streamguard.store.roles import (
        ensure_app_role,
        ensure_backtest_role,
        ensure_console_role,
    )

    with connect(settings) as conn:
        applied = apply(conn)
        ensure_app_role(conn, settings)
        ensure_console_role(conn, settings)
        ensure_backtest_role(conn, settings)
        return applied


COMPONENTS = (postgres_server.NAME, kafka_server.NAME, RULES, DECIDE, CONSOLE)


def up(
    settings: Settings,
    *,
    generator_rate: int = 0,
    only: tuple[str, ...] = COMPONENTS,
    decision_instances: int | None = None,
    say: Callable[[str], None] = print,
) -> bool:
    """Start whatever is not running (of `only`); return False when everything already was.

    `decision_instances` (default: the setting) decision processes run in one group; instances
    beyond that number, started by an earlier `up`, are stopped.
    """
    unknown = set(only) - set(COMPONENTS)
    if unknown:
        raise StackError(
            f"unknown component(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(COMPONENTS)}"
        )
    paths = Paths(settings.state_path)
    paths.ensure()
    started_any = False
    wanted_pg = settings.runs_local_postgres and postgres_server.NAME in only
    if wanted_pg and _running(settings, postgres_server.NAME) is None:
        say("starting PostgreSQL…")
        postgres_server.start(settings)
        started_any = True
    applied = migrate(settings) if postgres_server.NAME in only else []
    if applied:
        say(f"applied migrations: {', '.join(applied)}")
    steps: list[tuple[str, str, bool, Callable[[], int]]] = [
        (
            kafka_server.NAME,
            kafka_server.NAME,
            settings.runs_local_kafka,
            lambda: kafka_server.start(settings),
        ),
        (RULES, RULES, True, lambda: start_rules(settings)),
        *[
            (name, DECIDE, True, partial(start_decide, settings, name))
            for name in decide_names(settings, decision_instances)
        ],
        (CONSOLE, CONSOLE, True, lambda: start_console(settings)),
    ]
    if not settings.runs_local_kafka:
        kafka_server.create_topics(settings)
    for name, component, wanted, start in steps:
        if wanted and component in only and _running(settings, name) is None:
            say(f"starting {name}…")
            start()
            started_any = True
    if DECIDE in only and _stop_extra_decide(settings, decision_instances, say):
        started_any = True
    if generator_rate > 0 and _running(settings, GENERATOR) is None:
        say(f"starting generator at {generator_rate} tx/s…")
        start_generator(settings, generator_rate)
        started_any = True
    return started_any


def _stop_extra_decide(
    settings: Settings, count: int | None, say: Callable[[str], None]
) -> list[tuple[str, int]]:
    """Stop the instances beyond `count` (a smaller `up --decision-instances`), last one first.

    They stop after the wanted ones are running, so the group moves their partitions to
    instances that are up; each resumes them from the offsets stored in PostgreSQL.
    """
    paths = Paths(settings.state_path)
    wanted = set(decide_names(settings, count))
    stopped = []
    for name in reversed(_decide_present(settings)):
        if name in wanted:
            continue
        pid = stop_pidfile(paths.pidfile(name))
        if pid is not None:
            say(f"stopped {name} (pid {pid}): {len(wanted)} decision instance(s) wanted")
            stopped.append((name, pid))
    return stopped


def _running(settings: Settings, name: str) -> int | None:
    if name == postgres_server.NAME:
        pid = postgres_server.postmaster_pid(settings)
        return pid if pid is not None and pid_alive(pid) else None
    return read_pid(Paths(settings.state_path).pidfile(name))


def down(settings: Settings, *, say: Callable[[str], None] = print) -> list[tuple[str, int]]:
    """Stop every process the stack started, producers first; return (name, pid) stopped."""
    paths = Paths(settings.state_path)
    stopped = []
    producers_first = (GENERATOR, CONSOLE, *reversed(_decide_present(settings)), RULES)
    for name in (*producers_first, kafka_server.NAME):
        pid = stop_pidfile(paths.pidfile(name))
        if pid is not None:
            say(f"stopped {name} (pid {pid})")
            stopped.append((name, pid))
    if settings.runs_local_postgres and _running(settings, postgres_server.NAME) is not None:
        pid = postgres_server.stop(settings)
        if pid is not None:
            say(f"stopped postgres (pid {pid})")
            stopped.append((postgres_server.NAME, pid))
    return stopped


def wipe(settings: Settings) -> None:
    """Delete the Kafka log, the PostgreSQL data and the Flink checkpoints."""
    for folder in ("kafka", "postgres", "flink"):
        shutil.rmtree(settings.state_path / folder, ignore_errors=True)


def status(settings: Settings) -> list[ComponentStatus]:
    """Every component with its state, PID and port."""
    rows = []
    pg = _running(settings, postgres_server.NAME) if settings.runs_local_postgres else None
    rows.append(
        ComponentStatus(
            postgres_server.NAME,
            _state(pg, settings.runs_local_postgres),
            pg,
            settings.pg_port if settings.runs_local_postgres else None,
            "" if settings.runs_local_postgres else "external (DATABASE_URL)",
        )
    )
    kafka = _running(settings, kafka_server.NAME) if settings.runs_local_kafka else None
    rows.append(
        ComponentStatus(
            kafka_server.NAME,
            _state(kafka, settings.runs_local_kafka),
            kafka,
            settings.kafka_port if settings.runs_local_kafka else None,
            "" if settings.runs_local_kafka else settings.kafka_bootstrap,
        )
    )
    rules = _running(settings, RULES)
    job = flink_job_state(settings) if rules else None
    rows = [replace(row, rss_mib=resident_mib(row.pid)) for row in rows]
    port = None if settings.flink_remote else settings.flink_ui_port
    where = f" on {settings.flink_remote}" if settings.flink_remote else ""
    rows.append(_supervised_status(settings, RULES, port, f"job {job}{where}" if job else ""))
    for name in (*_decide_present(settings), GENERATOR):
        rows.append(_supervised_status(settings, name, None))
    console = _supervised_status(settings, CONSOLE, settings.console_port)
    if console.pid:
        detail = ", ".join(part for part in (settings.console_url, console.detail) if part)
        console = replace(console, detail=detail)
    rows.append(console)
    return rows


def _supervised_status(
    settings: Settings, name: str, port: int | None, detail: str = ""
) -> ComponentStatus:
    """A supervised component: the child's PID, the supervisor's state, restarts, last exit.

    The memory counts the supervisor and everything under it.
    """
    supervisor = _running(settings, name)
    rss = resident_mib(supervisor)
    found = read_state(Paths(settings.state_path), name)
    if found is None or found.supervisor_pid != supervisor:
        if supervisor is None and found is not None and found.state in ("failed", "gave up"):
            # it ended by itself: say why, so that the operator does not have to dig for it
            return ComponentStatus(
                name, found.state, None, port, detail, None, found.restarts, found.last_exit
            )
        return ComponentStatus(name, _state(supervisor, True), supervisor, port, detail, rss)
    return ComponentStatus(
        name,
        found.state,
        found.child_pid or supervisor,
        port,
        detail,
        rss,
        found.restarts,
        found.last_exit,
    )


def _state(pid: int | None, managed: bool) -> str:
    if not managed:
        return "external"
    return "running" if pid is not None else "stopped"


__all__ = ["StackError", "up", "down", "status", "wipe"]
