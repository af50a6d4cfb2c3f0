"""The pipeline distributed, as a user would run it: a Flink standalone cluster with 2 task slots
from the apache-flink package's own `bin/`, `streamguard up --decision-instances 2` with
STREAMGUARD_FLINK_REMOTE naming it (the rules job at parallelism 2 on the cluster, the stack
sending its heartbeats), 6 partitions on the account-keyed topics, 2 decision instances.

One cluster and one stack for the module; the checks are the single-machine e2e test's.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from streamguard.kafka import topics
from streamguard.rules.remote import ENDED, FlinkRest
from streamguard.stack.process import Paths, tail
from streamguard.stack.supervise import read_state
from tests.e2e.test_pipeline import check_alerts_land_in_postgres, wait_for
from tests.flinkcluster import StandaloneCluster, standalone_cluster
from tests.stackfixture import StackHandle, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PARALLELISM = 2
PARTITIONS = 6
INSTANCES = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A JobManager and a TaskManager with a slot per parallel subtask."""
    with standalone_cluster(tmp_path_factory.mktemp("flink"), slots=PARALLELISM) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def distributed(cluster: StandaloneCluster) -> Iterator[StackHandle]:
    """PostgreSQL and Kafka on 6 partitions, then what a user types for the rest."""
    with running_stack(
        only="postgres,kafka",
        STREAMGUARD_FLINK_REMOTE=cluster.address,
        STREAMGUARD_FLINK_PARALLELISM=str(PARALLELISM),
        STREAMGUARD_TRANSACTIONS_PARTITIONS=str(PARTITIONS),
        STREAMGUARD_ALERTS_PARTITIONS=str(PARTITIONS),
    ) as stack:
        stack.cli("up", "--decision-instances", str(INSTANCES), "--only", "rules,decide")
        yield stack


def test_the_pipeline_on_a_flink_cluster_with_two_decision_instances(
    distributed: StackHandle, cluster: StandaloneCluster
) -> None:
    job_id = FlinkRest(cluster.address).live_job()
    assert job_id is not None, f"no rules job on the cluster: {cluster.get('/jobs/overview')}"
    cluster.wait_running(job_id, timeout_s=120)
    vertices = cluster.get(f"/jobs/{job_id}")["vertices"]
    assert max(v["parallelism"] for v in vertices) == PARALLELISM, vertices
    admin = AdminClient({"bootstrap.servers": distributed.settings.bootstrap_servers})
    metadata = admin.list_topics(timeout=10).topics
    for topic in (topics.TRANSACTIONS, topics.FRAUD_ALERTS, topics.LABELS):
        assert len(metadata[topic].partitions) == PARTITIONS, topic
    _wait_owners(distributed, [("decide-1", 9), ("decide-2", 9)])

    # the e2e checks, among them a windowed rule built from StreamGuard's own Java aggregates
    check_alerts_land_in_postgres(distributed)
    # and an attack from the generator's CLI, decided through the same path
    account = "ACC000123"
    distributed.cli("generate", "attack", "--scenario", "high_amount", "--account", account)
    with psycopg.connect(distributed.settings.db_url) as conn:
        decided = wait_for(
            "SELECT d.rule_ids FROM decisions d JOIN transactions t USING (transaction_id)"
            " WHERE t.account_id = %s",
            (account,),
            lambda rows: any("HIGH_AMOUNT" in rule_ids for (rule_ids,) in rows),
            conn,
            timeout_s=60,
        )
    assert any("HIGH_AMOUNT" in rule_ids for (rule_ids,) in decided), decided

    # the stack's rules process dies: its supervisor restarts it, and it attaches to the job
    paths = Paths(distributed.settings.state_path)
    before = read_state(paths, "rules")
    assert before is not None and before.child_pid is not None
    os.kill(before.child_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "attaching" not in tail(paths.log("rules"), 50):
        time.sleep(0.5)
    assert "attaching" in tail(paths.log("rules"), 50), tail(paths.log("rules"), 50)
    jobs = cluster.get("/jobs/overview")["jobs"]
    assert [j["jid"] for j in jobs if j["state"] not in ENDED] == [job_id], jobs


def _wait_owners(stack: StackHandle, want: list[tuple[str, int]]) -> None:
    with psycopg.connect(stack.settings.db_url) as conn:
        rows = wait_for(
            "SELECT owner, count(*) FROM partition_owners GROUP BY owner ORDER BY owner",
            (),
            lambda rows: rows == want,
            conn,
            timeout_s=60,
        )
    assert rows == want, f"partition owners {rows}, wanted {want}"
