"""decide's two connections on real Kafka and PostgreSQL: a batch's COPY runs while the
batch before it is decided. A message repeated in the next batch neither doubles a row nor
stalls the service (the repeated batch goes in by INSERT ... ON CONFLICT, after the one before
it has committed), and losing PostgreSQL stops the service instead of hanging one of its
threads."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from streamguard.kafka import topics
from streamguard.stack.postgres_server import superuser_conninfo
from tests.integration.decideproc import (
    decision_service,
    make_tx,
    producer,
    send,
    wait_for,
)
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

DISTINCT = 3000
BATCH = 100
LAG = 60  # each message is sent again LAG messages later: in the same batch or the next one


def test_messages_repeated_across_batches_are_stored_once(
    infra: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    account = f"PL-{run}"  # one key, so one partition, so the repeats keep their order
    merchants = [f"PL-{run}-M{j}" for j in range(4)]
    txs = [make_tx(account, merchant_id=merchants[i % 4]) for i in range(DISTINCT)]
    sequence = []
    for index, tx in enumerate(txs):
        sequence.append(tx)
        if index >= LAG:
            sequence.append(txs[index - LAG])
    prod = producer(infra)
    send(prod, topics.TRANSACTIONS, sequence[: len(sequence) // 2])  # the first half: all new
    with (
        psycopg.connect(infra.settings.db_url) as conn,
        decision_service(
            infra, tmp_path / "decide.log", STREAMGUARD_DECIDE_BATCH_SIZE=str(BATCH)
        ) as process,
    ):
        send(prod, topics.TRANSACTIONS, sequence[len(sequence) // 2 :])
        counted = wait_for(
            conn,
            "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats WHERE merchant_id = ANY(%s)",
            (merchants,),
            lambda rows: rows[0][0] >= DISTINCT,
            timeout_s=120,
        )
        assert counted == [(DISTINCT,)], "stalled or counted a repeat twice"
        assert process.poll() is None, "the service died"
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id), count(*) FILTER"
            " (WHERE status = 'APPROVED') FROM transactions WHERE account_id = %s",
            (account,),
        ).fetchone()
    assert rows == (DISTINCT, DISTINCT, DISTINCT)


def test_a_lost_connection_is_ridden_out_with_nothing_lost_or_doubled(
    infra: StackHandle, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    account = f"PX-{run}"
    txs = [make_tx(account) for _ in range(400)]
    prod = producer(infra)
    log = tmp_path / "decide.log"
    count = "SELECT count(*) FROM transactions WHERE account_id = %s"
    with psycopg.connect(infra.settings.db_url) as conn:
        with decision_service(infra, log) as process:
            send(prod, topics.TRANSACTIONS, txs[:200])
            assert wait_for(conn, count, (account,), lambda rows: rows[0][0] == 200) == [(200,)]
            with psycopg.connect(superuser_conninfo(infra.settings), autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity, pg_terminate_backend(pid)"
                    " WHERE application_name = 'streamguard-decide'"
                ).fetchone()
            assert killed is not None and killed[0] >= 1
            send(prod, topics.TRANSACTIONS, txs[200:])
            # a lost connection is retryable (errors.py): the service reconnects and goes on
            stored = wait_for(conn, count, (account,), lambda rows: rows[0][0] >= 400)
            assert stored == [(400,)]
            assert process.poll() is None, "the service ended on a retryable error"
        assert "recovered" in log.read_text()
