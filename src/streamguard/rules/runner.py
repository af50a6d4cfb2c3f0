"""The rules process: submit every rule as one Flink job and keep the mini-cluster alive (or,
with STREAMGUARD_FLINK_REMOTE, submit it to that cluster and watch it: rules/remote.py).

On start it resumes from the newest retained checkpoint, so a restart (crash, redeploy, reboot)
continues from the Kafka offsets and window contents of that checkpoint: no alert is lost, and
the few that are produced again carry the same alert ids, which the decision service deduplicates.

While it runs it appends watermark heartbeats to every transactions partition
(kafka/heartbeat.py), so windows close when traffic stops. They start once the job is
submitted: a restarted job reads its backlog first (it resumes from the checkpoint's offsets,
and the new heartbeats are appended after the backlog), so they never make that backlog late.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
from pathlib import Path

from streamguard.config import Settings, get_settings
from streamguard.kafka.heartbeat import Heartbeat
from streamguard.rules import remote
from streamguard.rules.catalog import Rule
from streamguard.rules.engine import (
    build_rules_job,
    checkpoint_root,
    drop_unreadable_checkpoints,
    latest_checkpoint,
)
from streamguard.rules.remote import RemoteJobEndedError

log = logging.getLogger(__name__)

#: Job folders kept in the checkpoint root; older ones are left over from earlier runs.
KEPT_JOB_FOLDERS = 2


def main(rules: list[Rule] | None = None) -> None:
    """Run the rules job until SIGTERM; the embedded cluster dies with this process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if settings.flink_remote:  # a cluster of the user's runs the job; this process watches it
        try:
            remote.run(settings, rules)
        except RemoteJobEndedError as exc:
            log.error("stopping: %s", exc)
            raise SystemExit(1) from exc
        return
    if drop_unreadable_checkpoints(settings):
        log.warning(
            "dropped checkpoints of an older state layout, which this release cannot restore: "
            "the rules start from their committed offsets with empty windows"
        )
    restore_from = latest_checkpoint(settings)
    if restore_from is not None:
        log.info("resuming from checkpoint %s", restore_from)
        prune_checkpoints(settings, keep=restore_from.parent)
    statements = build_rules_job(settings, rules=rules, restore_from=restore_from)
    result = statements.execute()
    # Heartbeats start once the job is planned and submitted. Calcite keeps its metadata
    # provider in a Java thread-local that the planner sets on the py4j thread serving this
    # Python thread. Another Python thread that runs while planning (the heartbeat's thread can
    # run the garbage collector, whose finalizers of Java objects call py4j) opens a second
    # py4j connection, served by another Java thread, and a later planning call can be sent
    # on it: "NullPointerException: metadataHandlerProvider". The backlog is still read before
    # the first heartbeat, which is appended after it.
    heartbeat = Heartbeat(settings).start()
    try:
        client = result.get_job_client()
        log.info(
            "rules job %s submitted; Flink UI on http://localhost:%d; heartbeats every %g s",
            client.get_job_id() if client else "?",
            settings.flink_ui_port,
            settings.heartbeat_interval_s,
        )
        result.wait()
    finally:
        heartbeat.stop()


def prune_checkpoints(settings: Settings, *, keep: Path) -> None:
    """Delete the job folders of old runs, keeping `keep` and the newest few."""
    folders = sorted(
        (path for path in checkpoint_root(settings).iterdir() if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for folder in folders[KEPT_JOB_FOLDERS:]:
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
