"""A Flink standalone (session) cluster for tests, from the apache-flink package's own `bin/`:
what a user runs on machines of their own, here on free ports in a folder of the test's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyflink

from streamguard.bench.private_stack import free_ports
from streamguard.stack.process import pid_alive


@dataclass(frozen=True)
class StandaloneCluster:
    """A Flink session cluster (a JobManager and one TaskManager) on free ports."""

    rest_port: int

    @property
    def address(self) -> str:
        return f"localhost:{self.rest_port}"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=5) as response:
            return json.load(response)

    def wait_running(self, job_id: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = None
        while time.monotonic() < deadline:
            state = self.get(f"/jobs/{job_id}")["state"]
            vertices = self.get(f"/jobs/{job_id}")["vertices"]
            if state == "RUNNING" and all(v["status"] == "RUNNING" for v in vertices):
                return
            time.sleep(1)
        raise AssertionError(f"job {job_id} is {state}")

    def cancel(self, job_id: str) -> None:
        request = urllib.request.Request(
            f"http://{self.address}/jobs/{job_id}?mode=cancel", method="PATCH"
        )
        urllib.request.urlopen(request, timeout=10).close()


@contextmanager
def standalone_cluster(folder: Path, *, slots: int = 1) -> Iterator[StandaloneCluster]:
    """`bin/start-cluster.sh` of the apache-flink package, its own conf folder, stopped by PID.

    One TaskManager with `slots` task slots: a job of parallelism `slots` fits.
    """
    home = Path(pyflink.__file__).parent
    conf, pids, logs = folder / "conf", folder / "pids", folder / "log"
    conf.mkdir()
    logs.mkdir()  # flink-daemon.sh writes its .out files there without creating it
    for name in ("log4j.properties", "log4j-console.properties", "logback.xml"):
        (conf / name).write_text((home / "conf" / name).read_text())
    # All five picked at once (held until every one is chosen, below the ephemeral range), so no
    # two are the same and no outgoing connection of the machine is handed one meanwhile.
    rest, jm_rpc, tm_rpc, tm_data, blob = free_ports(5)
    cluster = StandaloneCluster(rest)
    java_opts = (home / "conf" / "config.yaml").read_text().split("all: ", 1)[1].splitlines()[0]
    settings = {
        "env.java.opts.all": java_opts,
        "env.pid.dir": str(pids),
        "env.log.dir": str(logs),
        "jobmanager.rpc.address": "localhost",
        "jobmanager.rpc.port": jm_rpc,
        "jobmanager.bind-host": "localhost",
        "jobmanager.memory.process.size": "768m",
        "taskmanager.bind-host": "localhost",
        "taskmanager.host": "localhost",
        "taskmanager.rpc.port": tm_rpc,
        "taskmanager.data.port": tm_data,
        "taskmanager.numberOfTaskSlots": slots,
        "taskmanager.memory.process.size": f"{768 + 256 * slots}m",
        "blob.server.port": blob,
        "rest.address": "localhost",
        "rest.bind-address": "localhost",
        "rest.port": cluster.rest_port,
        "parallelism.default": 1,
    }
    (conf / "config.yaml").write_text(
        "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items())
    )
    (conf / "masters").write_text(f"localhost:{cluster.rest_port}\n")
    (conf / "workers").write_text("localhost\n")
    env = {**os.environ, "FLINK_HOME": str(home), "FLINK_CONF_DIR": str(conf)}
    try:
        subprocess.run(
            ["bash", str(home / "bin" / "start-cluster.sh")],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if cluster.get("/overview")["slots-available"] >= slots:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise AssertionError(f"the standalone cluster never offered {slots} slot(s)")
        yield cluster
    finally:
        for pidfile in sorted(pids.glob("*.pid")):
            for pid in map(int, pidfile.read_text().split()):
                if pid_alive(pid):
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + 30
                    while pid_alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.2)
