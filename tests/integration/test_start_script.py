"""`./start.sh` and `./stop.sh` themselves, against a user's own Kafka and PostgreSQL.

The servers are started by the test on ports of their own (with the project's code, in a folder
of their own), and handed to the scripts only through STREAMGUARD_KAFKA_BOOTSTRAP and
STREAMGUARD_DATABASE_URL, as a user's servers would be. The scripts get their own state folder
and ports through the environment. One run checks: the first start starts no local Kafka or
PostgreSQL and the pipeline stores and decides on the user's servers; a second start is
idempotent and starts no second generator; `./stop.sh` leaves no process of that stack behind
and the user's servers running.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psutil
import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.stack.process import Paths
from streamguard.stack.supervise import state_file
from tests.factories import make_transaction, noon_before
from tests.integration.decideproc import wait_for
from tests.processes import processes_mentioning
from tests.stackfixture import (
    StackHandle,
    running_stack,
    settings_from,
    stack_env,
    with_classpath,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SUPERVISED = ("rules", "decide-1", "console", "generator")


@pytest.fixture(scope="module")
def user_servers() -> Iterator[StackHandle]:
    """A Kafka and a PostgreSQL that stand for a user's servers: nothing else of StreamGuard."""
    with running_stack(only="postgres,kafka") as servers:
        yield servers


@pytest.fixture
def script_env(user_servers: StackHandle) -> Iterator[dict[str, str]]:
    """The scripts' environment: their own state folder and ports, the user's servers."""
    state_dir = with_classpath(Path(tempfile.mkdtemp(prefix="streamguard-test-script-")))
    env = stack_env(
        state_dir,
        STREAMGUARD_KAFKA_BOOTSTRAP=user_servers.settings.bootstrap_servers,
        STREAMGUARD_DATABASE_URL=user_servers.settings.db_url,
        STREAMGUARD_APP_PG_PASSWORD=secrets.token_hex(12),
        STREAMGUARD_CONSOLE_PG_PASSWORD=secrets.token_hex(12),
        STREAMGUARD_GENERATOR_RATE="5",
    )
    try:
        yield env
    finally:
        subprocess.run(["./stop.sh", "--keep"], cwd=REPO, env=env, capture_output=True, timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


def script(name: str, env: dict[str, str], *args: str) -> str:
    """Run ./start.sh or ./stop.sh (no terminal: it asks nothing); its output, checked."""
    result = subprocess.run(
        [f"./{name}", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = " ".join((result.stdout + result.stderr).split())  # the terminal may wrap lines
    assert result.returncode == 0, f"{name} exited {result.returncode}: {output[-4000:]}"
    return output


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_processes(env: dict[str, str]) -> dict[str, list[psutil.Process]]:
    """Each supervised component's supervisor and everything under it (the component, its JVM)."""
    paths = Paths(Path(env["STREAMGUARD_STATE_DIR"]))
    found = {}
    for name in SUPERVISED:
        supervisor = psutil.Process(int(paths.pidfile(name).read_text().split()[0]))
        found[name] = [supervisor, *supervisor.children(recursive=True)]
    return found


def of_stack(pid: int, state_dir: str) -> bool:
    """True when the process was started for the stack in `state_dir` (its environment)."""
    try:
        return psutil.Process(pid).environ().get("STREAMGUARD_STATE_DIR") == state_dir
    except psutil.Error:
        return False


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_start_twice_on_a_users_servers_then_stop(
    user_servers: StackHandle, script_env: dict[str, str]
) -> None:
    settings = settings_from(script_env)
    paths = Paths(settings.state_path)
    first = script("start.sh", script_env)
    for name in ("rules", "decide-1", "console", "generator"):
        assert f"starting {name}" in first, first[-3000:]
    assert "starting PostgreSQL" not in first and "starting kafka" not in first
    status = {row["component"]: row for row in json.loads(cli_json(script_env))}
    assert status["kafka"]["state"] == status["postgres"]["state"] == "external"
    assert status["kafka"]["pid"] is None and status["postgres"]["pid"] is None
    assert not paths.pidfile("kafka").exists() and not (paths.root / "postgres").exists()
    assert not listening(settings.kafka_port) and not listening(settings.pg_port)
    assert all(status[name]["state"] == "running" for name in SUPERVISED), status

    # The pipeline on the user's servers: a R$ 5,000 transaction is stored, alerted, decided.
    tx = make_transaction(
        account_id=f"SCRIPT-{uuid.uuid4().hex[:6]}",
        amount=Decimal("5000.00"),
        ts_ms=noon_before(int(time.time() * 1000)),
    )
    producer = Producer(producer_config(user_servers.settings))
    producer.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
    assert producer.flush(30) == 0
    with psycopg.connect(user_servers.settings.db_url) as conn:
        decided = wait_for(
            conn,
            "SELECT d.action, d.rule_ids, t.status FROM decisions d"
            " JOIN transactions t USING (transaction_id) WHERE transaction_id = %s",
            (tx.transaction_id,),
            bool,
            timeout_s=90,
        )
        assert decided and decided[0][1] == ["HIGH_AMOUNT"], decided
        assert decided[0][2] == {"REVIEW": "REVIEW", "BLOCK": "BLOCKED"}[decided[0][0]]
        generated = wait_for(
            conn,
            "SELECT count(*) FROM transactions WHERE account_id <> %s",
            (tx.account_id,),
            lambda rows: rows[0][0] > 0,
        )
        assert generated[0][0] > 0, "the generator's transactions were never stored"

    before = stack_processes(script_env)
    generator_pid = before["generator"][0].pid
    second = script("start.sh", script_env)
    assert "already up" in second and "starting" not in second, second[-3000:]
    after = stack_processes(script_env)
    assert {n: [p.pid for p in ps] for n, ps in after.items()} == {
        n: [p.pid for p in ps] for n, ps in before.items()
    }, "the second start changed the stack's processes"
    # One generator: its supervisor and the one child it runs (both name the command).
    generators = {
        pid
        for pid, _ in processes_mentioning("generate stream")
        if of_stack(pid, script_env["STREAMGUARD_STATE_DIR"])
    }
    child = json.loads(state_file(paths, "generator").read_text())["child_pid"]
    assert generators == {generator_pid, child}, generators
    assert psutil.Process(child).ppid() == generator_pid

    stopped = script("stop.sh", script_env, "--wipe", "--yes")
    for name in SUPERVISED:
        assert f"stopped {name}" in stopped, stopped
    left = [p.pid for ps in before.values() for p in ps if alive(p)]
    assert left == [], f"processes of the stack still running: {left}"
    assert processes_mentioning(str(settings.state_path)) == []
    # The user's servers are theirs: still up.
    admin = AdminClient({"bootstrap.servers": user_servers.settings.bootstrap_servers})
    assert topics.TRANSACTIONS in admin.list_topics(timeout=10).topics
    with psycopg.connect(user_servers.settings.db_url) as conn:
        assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] >= 1


def cli_json(env: dict[str, str]) -> str:
    """`streamguard status --json` with the scripts' environment."""
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "streamguard"), "status", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
