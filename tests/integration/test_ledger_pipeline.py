"""The ledger's two connections against real Kafka and PostgreSQL: a batch's COPY runs while the
batch before it is decided, and a message repeated in the next batch neither doubles a row nor
stalls the service (the repeated batch goes in by INSERT ... ON CONFLICT, after the one before
it has committed)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from streamguard.kafka import topics
from tests.integration.ledgerproc import decision_service, make_tx, producer, send, wait_for
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
            infra, tmp_path / "ledger.log", STREAMGUARD_LEDGER_BATCH_SIZE=str(BATCH)
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
