"""The rules job on a Flink cluster of the user's (STREAMGUARD_FLINK_REMOTE), run by the stack.

`streamguard up` then starts no embedded cluster: its `rules` process submits the job to the
cluster once, watches it, and sends the watermark heartbeats (kafka/heartbeat.py), which no
Flink cluster sends by itself. A restarted process (the supervisor, a second `up`) finds the job
still running by its name and attaches to it instead of submitting a second one; a job that
ended (failed, cancelled) ends the process with exit 1, so the supervisor submits it again.
`streamguard down` stops the process and its heartbeats, not the job: the cluster owns it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from streamguard.config import Settings
from streamguard.kafka.heartbeat import Heartbeat
from streamguard.rules.catalog import Rule
from streamguard.rules.engine import JOB_NAME, build_rules_job

log = logging.getLogger(__name__)

#: Job states after which a Flink job never runs again.
ENDED = frozenset({"FINISHED", "CANCELED", "FAILED"})


class RemoteJobEndedError(RuntimeError):
    """The rules job on the cluster ended (or the cluster stopped answering)."""


class FlinkRest:
    """The few calls of a Flink cluster's REST API that the stack makes."""

    def __init__(self, address: str, *, timeout_s: float = 5.0) -> None:
        self.base = f"http://{address}"
        self.timeout_s = timeout_s

    def get(self, path: str) -> Any:
        """GET `path`, parsed from JSON; an unreachable cluster raises OSError."""
        with urllib.request.urlopen(self.base + path, timeout=self.timeout_s) as response:
            return json.load(response)

    def live_job(self, name: str = JOB_NAME) -> str | None:
        """The id of a job called `name` that has not ended, if there is one."""
        jobs = self.get("/jobs/overview").get("jobs", [])
        live = [j for j in jobs if j.get("name") == name and j.get("state") not in ENDED]
        return str(live[0]["jid"]) if live else None

    def job_state(self, job_id: str) -> str:
        """The job's state (RUNNING, RESTARTING, FAILED, ...)."""
        return str(self.get(f"/jobs/{job_id}")["state"])


def submit_or_attach(settings: Settings, rest: FlinkRest, rules: list[Rule] | None) -> str:
    """The running rules job's id: the one already on the cluster, or one submitted now."""
    found = rest.live_job()
    if found is not None:
        log.info("rules job %s already runs on %s: attaching to it", found, rest.base)
        return found
    result = build_rules_job(settings, remote=settings.flink_remote, rules=rules).execute()
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else rest.live_job()
    if job_id is None:
        raise RemoteJobEndedError(f"the rules job was submitted to {rest.base} but is not there")
    log.info("rules job %s submitted to %s", job_id, rest.base)
    return job_id


def watch(
    rest: FlinkRest,
    job_id: str,
    *,
    interval_s: float = 2.0,
    unreachable_for_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return never; raise RemoteJobEndedError once the job ended or the cluster stayed silent
    for `unreachable_for_s`."""
    silent_since: float | None = None
    while True:
        try:
            state = rest.job_state(job_id)
            silent_since = None
        except OSError as exc:
            silent_since = silent_since if silent_since is not None else clock()
            if clock() - silent_since >= unreachable_for_s:
                raise RemoteJobEndedError(f"{rest.base} unreachable: {exc}") from exc
            log.warning("Flink cluster %s not answering: %s", rest.base, exc)
            state = ""
        if state in ENDED:
            raise RemoteJobEndedError(f"the rules job {job_id} on {rest.base} is {state}")
        sleep(interval_s)


def run(settings: Settings, rules: list[Rule] | None = None) -> None:
    """Submit (or find) the job on the cluster, then heartbeat and watch it until stopped."""
    rest = FlinkRest(settings.flink_remote)
    job_id = submit_or_attach(settings, rest, rules)
    heartbeat = Heartbeat(settings).start()
    log.info(
        "rules job %s runs on %s; heartbeats every %g s",
        job_id,
        settings.flink_remote,
        settings.heartbeat_interval_s,
    )
    try:
        watch(rest, job_id)
    finally:
        heartbeat.stop()
