"""A velocity alert escalates the burst's earlier transactions, on real Kafka and PostgreSQL.

The first test drives the decision service with alerts shaped like HIGH_VELOCITY's (weights
chosen so each outcome is exact): who is escalated, what is left alone, that a repeat changes
nothing. The second sends a burst through the whole pipeline, the real rule included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from streamguard.bench import collect
from streamguard.domain.models import FraudAlert, Transaction
from streamguard.kafka import topics
from tests.integration.decideproc import decision_service, make_alert, make_tx, producer, send
from tests.integration.decideproc import wait_for as wait_rows
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

REASON = "escalated: part of velocity burst of {n} transactions in 60 s, alert HIGH_VELOCITY:{tx}"


@pytest.fixture(scope="module")
def running(infra: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    log = tmp_path_factory.mktemp("decide-bursts") / "decide.log"
    with decision_service(infra, log) as process:
        yield infra
        assert process.poll() is None, "the service died during the tests"


def burst(account: str, n: int, gap_ms: int = 3000) -> list[Transaction]:
    """n transactions of one account, gap_ms apart, the last one now."""
    last = int(time.time() * 1000)
    return [make_tx(account, "45.00", ts_ms=last - (n - 1 - i) * gap_ms) for i in range(n)]


def velocity_alert(txs: list[Transaction], weight: int) -> FraudAlert:
    """HIGH_VELOCITY's alert on the last of `txs`, its evidence naming them all as its window."""
    first, last = txs[0], txs[-1]
    evidence = {
        "count": str(len(txs)),
        "first_transaction_id": first.transaction_id,
        "span_ms": str(last.ts_ms - first.ts_ms),
        "window_s": "60",
    }
    return make_alert(last, "HIGH_VELOCITY", weight).model_copy(update={"evidence": evidence})


#: tx id, action, version, reason texts and status of the decided transactions among %s.
DECISIONS = (
    "SELECT d.transaction_id, d.action, d.version,"
    " ARRAY(SELECT r ->> 'text' FROM jsonb_array_elements(d.reasons) r), t.status"
    " FROM decisions d JOIN transactions t USING (transaction_id)"
    " WHERE d.transaction_id = ANY(%s)"
)


def wait_decisions(
    conn: psycopg.Connection,
    txs: list[Transaction],
    until: Callable[[dict[str, tuple]], bool] = lambda found: True,
    timeout_s: float = 60,
) -> dict[str, tuple]:
    """tx id -> (action, version, reason texts, status) of those decided, once `until` holds on
    them (or time runs out)."""
    ids = [tx.transaction_id for tx in txs]

    def by_id(rows: list[tuple]) -> dict[str, tuple]:
        return {r[0]: tuple(r[1:]) for r in rows}

    return by_id(wait_rows(conn, DECISIONS, (ids,), lambda rows: until(by_id(rows)), timeout_s))


def decisions_of(conn: psycopg.Connection, txs: list[Transaction]) -> dict[str, tuple]:
    """tx id -> (action, version, reason texts, status) of those decided now."""
    return wait_decisions(conn, txs)


def wait_decided(conn: psycopg.Connection, txs: list[Transaction], count: int) -> dict:
    return wait_decisions(conn, txs, lambda found: len(found) >= count)


def test_a_judged_burst_sends_its_earlier_transactions_to_review(running: StackHandle) -> None:
    account = f"BURST-{uuid.uuid4().hex[:8]}"
    early = make_tx(account, "45.00", ts_ms=int(time.time() * 1000) - 90_000)  # before the window
    txs = burst(account, 4)
    prod = producer(running)
    send(prod, topics.TRANSACTIONS, [early, *txs])
    send(prod, topics.FRAUD_ALERTS, [make_alert(txs[1], "TEST_BLOCK", 80)])
    with psycopg.connect(running.settings.db_url) as conn:
        assert wait_decided(conn, [txs[1]], 1)[txs[1].transaction_id][0] == "BLOCK"
        send(prod, topics.FRAUD_ALERTS, [velocity_alert(txs, 40)])
        found = wait_decided(conn, [early, *txs], 4)
        reason = REASON.format(n=4, tx=txs[3].transaction_id)
        assert found[txs[3].transaction_id][0] == "REVIEW"
        for tx in (txs[0], txs[2]):
            assert found[tx.transaction_id] == ("REVIEW", 1, [reason], "REVIEW")
        blocked = found[txs[1].transaction_id]
        assert blocked[:2] == ("BLOCK", 1) and reason not in blocked[2], "a BLOCK was touched"
        assert early.transaction_id not in found, "a transaction outside the window escalated"
        triggers = conn.execute(
            "SELECT transaction_id, trigger, trigger_append_at IS NOT NULL FROM decision_history"
            " WHERE transaction_id = ANY(%s) AND trigger = 'escalation'",
            ([tx.transaction_id for tx in txs],),
        ).fetchall()
        assert sorted(triggers) == sorted(
            (tx.transaction_id, "escalation", True) for tx in (txs[0], txs[2])
        )
        published = wait_rows(
            conn,
            "SELECT count(*) FROM decision_history WHERE transaction_id = ANY(%s)"
            " AND trigger = 'escalation' AND published_at IS NOT NULL",
            ([tx.transaction_id for tx in txs],),
            lambda rows: rows[0][0] == 2,
        )
        assert published == [(2,)], "the escalations were not published to fraud_decisions"

        # The same alert again, and the next one of the burst: nothing changes twice.
        more = [*txs, make_tx(account, "45.00", ts_ms=txs[-1].ts_ms + 1000)]
        send(prod, topics.TRANSACTIONS, [more[-1]])
        send(prod, topics.FRAUD_ALERTS, [velocity_alert(txs, 40), velocity_alert(more, 40)])
        wait_decided(conn, more, 5)
        time.sleep(2)
        again = decisions_of(conn, more)
        for tx in (txs[0], txs[2]):
            assert again[tx.transaction_id] == ("REVIEW", 1, [reason], "REVIEW")
        assert again[txs[3].transaction_id] == found[txs[3].transaction_id]


def test_a_burst_scored_below_review_escalates_nothing(running: StackHandle) -> None:
    account = f"MILD-{uuid.uuid4().hex[:8]}"
    txs = burst(account, 4)
    prod = producer(running)
    send(prod, topics.TRANSACTIONS, txs)
    send(prod, topics.FRAUD_ALERTS, [velocity_alert(txs, 10)])
    with psycopg.connect(running.settings.db_url) as conn:
        found = wait_decided(conn, txs, 1)
        time.sleep(2)
        found = decisions_of(conn, txs)
    assert list(found) == [txs[3].transaction_id] and found[txs[3].transaction_id][0] == "APPROVE"


def test_the_real_rule_escalates_a_burst_through_the_whole_pipeline(stack: StackHandle) -> None:
    """Five transactions 1 s apart: HIGH_VELOCITY fires on the 4th (below review alone) and the
    5th (REVIEW: one earlier alert on the account); the 5th's window escalates the first four."""
    account = f"VEL-{uuid.uuid4().hex[:8]}"
    prod, txs = producer(stack), []
    for _ in range(5):  # each stamped as it is sent: older than the watermark delay is late
        txs.append(make_tx(account, "45.00"))
        send(prod, topics.TRANSACTIONS, txs[-1:])
        time.sleep(1)
    reason = REASON.format(n=5, tx=txs[4].transaction_id)
    with psycopg.connect(stack.settings.db_url) as conn:
        found = wait_decisions(
            conn,
            txs,
            lambda found: all(found.get(tx.transaction_id, ("",))[0] == "REVIEW" for tx in txs),
            timeout_s=90,
        )
    for tx in txs[:3]:
        assert found.get(tx.transaction_id) == ("REVIEW", 1, [reason], "REVIEW"), found
    fourth = found[txs[3].transaction_id]
    assert fourth[0] == "REVIEW" and fourth[2][-1] == reason, fourth
    assert found[txs[4].transaction_id][0] == "REVIEW"


def test_the_bench_counts_an_escalation_apart_from_a_first_verdict(running: StackHandle) -> None:
    """The bench's first-verdict latency (`bench/collect.py`): an escalated transaction was
    approved when stored, so its escalation is not its first decision; the alerted one's is."""
    account = f"LAT-{uuid.uuid4().hex[:8]}"
    txs = burst(account, 4)
    prod = producer(running)
    send(prod, topics.TRANSACTIONS, txs)
    send(prod, topics.FRAUD_ALERTS, [velocity_alert(txs, 40)])
    with psycopg.connect(running.settings.db_url) as conn:
        assert len(wait_decided(conn, txs, 4)) == 4
        rows = conn.execute(
            f"SELECT t.transaction_id, {collect.FIRST_DECIDED} IS NOT NULL,"
            f" {collect.DECIDED_AT} = t.stored_at FROM transactions t {collect.DECISIONS_JOIN}"
            " WHERE t.transaction_id = ANY(%s)",
            ([tx.transaction_id for tx in txs],),
        ).fetchall()
    first = {r[0]: (r[1], r[2]) for r in rows}
    for tx in txs[:3]:  # escalated: their verdict was the APPROVED at storing
        assert first[tx.transaction_id] == (False, True), first
    assert first[txs[3].transaction_id][0] is True, first
