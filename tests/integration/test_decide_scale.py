"""Two decision instances in one group over 6 partitions: per-partition fencing in PostgreSQL,
exactly once across a rebalance (one instance of two SIGKILLed mid-run over 300,000
transactions, compared with one instance deciding the same topics on a database of its own),
alerts that arrive before their transactions decided consistently, and
`streamguard up --decision-instances 2`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.kafka.producer import Producer as KafkaProducer
from streamguard.stack import postgres_server, services
from streamguard.stack.process import Paths, pid_alive, stop_pidfile
from streamguard.store import ledger
from tests.integration.decideproc import (
    make_alert,
    make_tx,
    producer,
    start_service,
    wait_for_log,
    wait_past_everything_sent,
)
from tests.integration.test_decide_recovery import check_exactly_once, wait_stored
from tests.stackfixture import StackHandle, running_stack, settings_from

pytestmark = pytest.mark.integration

PARTITIONS = 6
MERCHANTS = 6
GROUP = "streamguard-decide"


@pytest.fixture(scope="module")
def six() -> Iterator[StackHandle]:
    """PostgreSQL and Kafka with 6 partitions per account-keyed topic."""
    with running_stack(
        only="postgres,kafka",
        STREAMGUARD_TRANSACTIONS_PARTITIONS=str(PARTITIONS),
        STREAMGUARD_ALERTS_PARTITIONS=str(PARTITIONS),
    ) as stack:
        yield stack


def test_a_claim_fences_the_previous_owner_and_waits_for_its_open_batch(
    six: StackHandle,
) -> None:
    group = f"fence-{uuid.uuid4().hex[:8]}"
    parts = [(topics.TRANSACTIONS, 0), (topics.FRAUD_ALERTS, 0)]
    url = six.settings.app_db_url  # the service's own role: the grants must allow all of it
    with psycopg.connect(url) as old, psycopg.connect(url) as new:
        with old.transaction():
            mine = ledger.claim_partitions(old, group, "decide-2", parts)
        assert set(mine.values()) == {1}
        # decide-2's batch is open and holds its partitions' rows ...
        assert ledger.lost_partitions(old, group, "decide-2", mine) == []  # opens a transaction
        claimed: dict = {}

        def claim() -> None:
            with new.transaction():
                claimed.update(ledger.claim_partitions(new, group, "decide-1", parts))

        claimer = threading.Thread(target=claim)
        claimer.start()
        claimer.join(1.0)
        assert claimer.is_alive(), "the claim did not wait for the open batch"
        old.commit()  # ... so the claim waits for it, then takes over
        claimer.join(10)
        assert set(claimed.values()) == {2}
        # a batch decide-2 starts afterwards sees that it lost both partitions
        with old.transaction():
            assert ledger.lost_partitions(old, group, "decide-2", mine) == sorted(parts)
        with new.transaction():
            assert ledger.lost_partitions(new, group, "decide-1", claimed) == []


TOTAL = 300_000  # the kill test's transactions
ACCOUNTS = 6_000


class Sent(NamedTuple):
    """A transaction or alert as produced: what the checks look it up by."""

    transaction_id: str
    alert_id: str = ""


def _templates() -> tuple[bytes, bytes]:
    """A transaction's and its alert's wire form, with %-fields for ids, merchant and time."""
    tx = make_tx("@A", "120.00", merchant_id="@M", transaction_id="@T", ts_ms=1)
    wires = [tx.to_wire(), make_alert(tx, "TEST_SEVENTY", 70).model_dump_json().encode()]
    assert not any(b"%" in w for w in wires)
    marks = [(b'"ts_ms":1', b'"ts_ms":%(s)s'), (b"@T", b"%(t)s"), (b"@A", b"%(a)s")]
    for old, new in [*marks, (b"@M", b"%(m)s")]:
        wires = [w.replace(old, new) for w in wires]
    return wires[0], wires[1]


def _fast_feed(
    handle: StackHandle, prefix: str, count: int, merchants: list[str]
) -> tuple[list[Sent], list[Sent], list[str]]:
    """`count` transactions as fast as the broker takes them, in `_feed`'s pattern (every
    ALERT_EVERY-th alerted, half of those alert-first), from pre-serialised payloads, through
    the project's producer."""
    tx_wire, alert_wire = _templates()
    prod = KafkaProducer(producer_config(handle.settings, **{"linger.ms": 20}))
    txs: list[Sent] = []
    alerts: list[Sent] = []
    first: list[str] = []
    merchant_ids = [m.encode() for m in merchants]
    for i in range(count):
        tx_id, account = f"{prefix}-T{i}", f"{prefix}-A{i % ACCOUNTS}".encode()
        fields = {
            b"t": tx_id.encode(),
            b"a": account,
            b"m": merchant_ids[i % len(merchant_ids)],
            b"s": str(int(time.time() * 1000)).encode(),
        }
        alerted = i % ALERT_EVERY == 0
        if alerted and i % (2 * ALERT_EVERY) == 0:
            prod.produce(topics.FRAUD_ALERTS, alert_wire % fields, key=account)
            first.append(tx_id)
        prod.produce(topics.TRANSACTIONS, tx_wire % fields, key=account)
        if alerted and i % (2 * ALERT_EVERY) != 0:
            prod.produce(topics.FRAUD_ALERTS, alert_wire % fields, key=account)
        txs.append(Sent(tx_id))
        if alerted:
            alerts.append(Sent(tx_id, f"TEST_SEVENTY:{tx_id}"))
        if i % 1000 == 999:
            prod.poll(0)
    assert prod.flush(60) == 0
    return txs, alerts, first


def _stored(handle: StackHandle, merchants: list[str]) -> int:
    """How many transactions the merchants' counters hold now."""
    with psycopg.connect(handle.settings.db_url) as conn:
        (stored,) = conn.execute(
            "SELECT COALESCE(sum(tx_count), 0) FROM merchant_stats WHERE merchant_id = ANY(%s)",
            (merchants,),
        ).fetchone()  # type: ignore[misc]
    return int(stored)


def _reference_database(handle: StackHandle, run: str) -> StackHandle:
    """A second database in the stack's PostgreSQL cluster, migrated by the project's code, and
    a consumer group of its own: the same topics' content decided again, independently."""
    env = {
        **handle.env,
        "STREAMGUARD_PG_DATABASE": f"reference_{run}",
        "STREAMGUARD_DECIDE_GROUP": f"reference-{run}",
        "STREAMGUARD_DECIDE_INSTANCE_ID": "reference-1",
    }
    reference = dataclasses.replace(handle, env=env, settings=settings_from(env))
    postgres_server.bootstrap(reference.settings)  # the owner role exists: creates the database
    services.migrate(reference.settings)
    return reference


def test_two_instances_across_a_kill_decide_as_one_instance_does(
    six: StackHandle, tmp_path: Path
) -> None:
    """300,000 transactions into 2 instances over 6 partitions, one SIGKILLed mid-run, and into
    1 instance on a database of its own: each stores everything once and decides every alert,
    with the same status and action for every transaction (see the scaling test for why the
    number of versions may differ)."""
    run = uuid.uuid4().hex[:8]
    merchants = [f"SC-{run}-M{j}" for j in range(MERCHANTS)]
    reference = _reference_database(six, run)
    fed: dict = {}

    def feed() -> None:
        fed["txs"], fed["alerts"], fed["first"] = _fast_feed(six, f"CR-{run}", TOTAL, merchants)

    names = ("decide-1", "decide-2", "reference-1")
    logs = [tmp_path / f"{name}.log" for name in names]
    with contextlib.ExitStack() as outs:
        out_a, out_b, out_ref = (outs.enter_context(log.open("ab")) for log in logs)
        a = start_service(six, out_a, STREAMGUARD_DECIDE_INSTANCE_ID=names[0])
        b = start_service(six, out_b, STREAMGUARD_DECIDE_INSTANCE_ID=names[1])
        ref = start_service(reference, out_ref)
        try:
            # 3 topics x 6 partitions, range-assigned: 9 each, the same numbers of every topic
            wait_for_log(logs[0], "assigned 9 partitions", a, timeout_s=90)
            wait_for_log(logs[1], "assigned 9 partitions", b, timeout_s=90)
            wait_for_log(logs[2], "assigned 18 partitions", ref, timeout_s=90)
            feeder = threading.Thread(target=feed, name="feed", daemon=True)
            feeder.start()
            wait_stored(six.settings, merchants, at_least=TOTAL // 4, timeout_s=120)
            b.send_signal(signal.SIGKILL)
            b.wait(10)
            at_kill = _stored(six, merchants)
            assert at_kill < TOTAL, "everything was stored before the kill"
            print(f"stored at the kill: {at_kill}, feed running: {feeder.is_alive()}")
            wait_for_log(logs[0], "assigned 18 partitions", a, timeout_s=60)
            feeder.join(120)
            txs, alerts, first = fed["txs"], fed["alerts"], fed["first"]
            _drain(six, merchants, txs)
            _drain(reference, merchants, txs)
            assert a.poll() is None, f"decide-1 exited {a.returncode}"
            assert ref.poll() is None, f"reference-1 exited {ref.returncode}"
        finally:
            for process in (a, b, ref):
                if process.poll() is None:
                    process.terminate()
                process.wait(30)
    outcomes = []
    for handle, label in ((six, "2 instances, one killed"), (reference, "one instance")):
        check_exactly_once(handle.settings, txs, alerts, merchants)
        check_every_alert_decided(handle, run, alerts, first)
        decided = _decided(handle, txs)
        versions = _check_histories(decided, label)
        print(f"{label}: versions per alerted transaction {dict(versions)}")
        outcomes.append([(d.status, d.action) for d in decided])
    assert _owners(six) == [("decide-1", 3 * PARTITIONS)]
    scaled, single = outcomes
    assert Counter(scaled) == Counter(single), "decision counts per action differ"
    differ = [(txs[i], s, r) for i, (s, r) in enumerate(zip(scaled, single, strict=True)) if s != r]
    assert differ == [], f"{len(differ)} outcomes differ from one instance's, first {differ[:5]}"


def check_every_alert_decided(
    handle: StackHandle, run: str, alerts: list, alert_first: list[str]
) -> None:
    """Each alerted transaction BLOCKED with its decision, whichever came first; none waiting."""
    alerted = [a.transaction_id for a in alerts]
    with psycopg.connect(handle.settings.db_url) as conn:
        rows = conn.execute(
            "SELECT t.transaction_id, t.status, d.action FROM transactions t"
            " LEFT JOIN decisions d USING (transaction_id) WHERE t.transaction_id = ANY(%s)",
            (alerted,),
        ).fetchall()
        waiting = conn.execute(
            "SELECT count(*) FROM awaiting_transactions WHERE transaction_id = ANY(%s)",
            (alerted,),
        ).fetchone()
        undecided = conn.execute(
            "SELECT count(*) FROM transactions t WHERE t.account_id LIKE %s"
            " AND t.status = 'APPROVED' AND EXISTS"
            " (SELECT 1 FROM decisions d WHERE d.transaction_id = t.transaction_id"
            "  AND d.action <> 'APPROVE')",
            (f"CR-{run}-%",),
        ).fetchone()
    assert len(rows) == len(alerted)
    wrong = [row for row in rows if (row[1], row[2]) != ("BLOCKED", "BLOCK")]
    first = set(alert_first)
    assert wrong == [], f"{len(wrong)} wrong, {sum(r[0] in first for r in wrong)} alert-first"
    assert waiting == (0,)
    assert undecided == (0,)


def test_up_runs_two_instances_each_with_its_id_pid_file_log_and_status_row(
    six: StackHandle,
) -> None:
    paths = Paths(six.settings.state_path)
    six.cli("up", "--only", "decide", "--decision-instances", "2")
    try:
        rows = {r["component"]: r for r in json.loads(six.cli("status", "--json").stdout)}
        assert rows["decide-1"]["state"] == rows["decide-2"]["state"] == "running"
        assert rows["decide-1"]["pid"] != rows["decide-2"]["pid"]
        for name, instance in (("decide-1", "decide-1"), ("decide-2", "decide-2")):
            assert paths.pidfile(name).exists()
            wait_for_log(paths.log(name), "assigned", _Alive(rows[name]["pid"]), timeout_s=60)
            assert f"instance {instance}" in paths.log(name).read_text()
        with psycopg.connect(six.settings.db_url) as conn:
            deadline = time.monotonic() + 30
            owners: list = []
            while time.monotonic() < deadline:
                owners = conn.execute(
                    "SELECT owner, count(*) FROM partition_owners WHERE group_id = %s"
                    " GROUP BY owner ORDER BY owner",
                    (GROUP,),
                ).fetchall()
                conn.rollback()
                if owners == [("decide-1", 9), ("decide-2", 9)]:
                    break
                time.sleep(0.5)
        assert owners == [("decide-1", 9), ("decide-2", 9)]
    finally:
        pids = [stop_pidfile(paths.pidfile(name)) for name in ("decide-2", "decide-1")]
    assert all(pid is not None and not pid_alive(pid) for pid in pids)


class _Alive:
    """The part of Popen that wait_for_log needs, for a process the stack started."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return None if pid_alive(self.pid) else -1


def _owners(handle: StackHandle) -> list[tuple[str, int]]:
    with psycopg.connect(handle.settings.db_url) as conn:
        rows = conn.execute(
            "SELECT owner, count(*) FROM partition_owners WHERE group_id = %s"
            " GROUP BY owner ORDER BY owner",
            (GROUP,),
        ).fetchall()
    return [(owner, int(count)) for owner, count in rows]


def _wait_owners(handle: StackHandle, want: list[tuple[str, int]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    owners: list = []
    while time.monotonic() < deadline:
        owners = _owners(handle)
        if owners == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"partition owners {owners}, wanted {want}")


def _decide_rows(handle: StackHandle) -> dict[str, dict]:
    rows = json.loads(handle.cli("status", "--json").stdout)
    return {r["component"]: r for r in rows if r["component"].startswith("decide")}


def test_up_with_fewer_instances_stops_the_extra_ones(six: StackHandle) -> None:
    paths = Paths(six.settings.state_path)
    six.cli("up", "--only", "decide", "--decision-instances", "3")
    try:
        before = _decide_rows(six)
        assert [before[n]["state"] for n in ("decide-1", "decide-2", "decide-3")] == ["running"] * 3
        extra = [paths.pidfile(n).read_text().strip() for n in ("decide-2", "decide-3")]
        out = six.cli("up", "--only", "decide", "--decision-instances", "1").stdout
        assert "stopped decide-3" in out and "stopped decide-2" in out
        after = _decide_rows(six)
        assert list(after) == ["decide-1"]
        assert after["decide-1"]["state"] == "running"
        assert after["decide-1"]["pid"] == before["decide-1"]["pid"]  # the one kept is untouched
        assert not any(pid_alive(int(pid)) for pid in extra)
        assert not paths.pidfile("decide-2").exists() and not paths.pidfile("decide-3").exists()
        _wait_owners(six, [("decide-1", 3 * PARTITIONS)])
    finally:
        pids = [stop_pidfile(paths.pidfile(n)) for n in ("decide-3", "decide-2", "decide-1")]
    assert all(pid is None or not pid_alive(pid) for pid in pids)


SCALE_RATE = 400  # tx/s
ALERT_EVERY = 8


def _feed(
    handle: StackHandle,
    prefix: str,
    count: int,
    merchants: list[str],
    stop: threading.Event | None = None,
) -> tuple:
    """`count` transactions at SCALE_RATE (fewer if `stop` is set first), every ALERT_EVERY-th
    alerted (half alert-first)."""
    prod = producer(handle)
    txs, alerts, first = [], [], []
    started = time.monotonic()
    for i in range(count):
        if stop is not None and stop.is_set():
            break
        tx = make_tx(f"{prefix}-A{i % 200}", "80.00", merchant_id=merchants[i % len(merchants)])
        alert = make_alert(tx, "TEST_SEVENTY", 70) if i % ALERT_EVERY == 0 else None
        if alert is not None and i % (2 * ALERT_EVERY) == 0:
            prod.produce(topics.FRAUD_ALERTS, key=tx.account_id, value=alert.model_dump_json())
            first.append(tx.transaction_id)
        prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
        if alert is not None and i % (2 * ALERT_EVERY) != 0:
            prod.produce(topics.FRAUD_ALERTS, key=tx.account_id, value=alert.model_dump_json())
        txs.append(tx)
        if alert is not None:
            alerts.append(alert)
        if i % 20 == 19:
            prod.poll(0)
            time.sleep(max(0.0, started + (i + 1) / SCALE_RATE - time.monotonic()))
    assert prod.flush(60) == 0
    return txs, alerts, first


class Decided(NamedTuple):
    """One transaction's outcome: its status, final action and the trigger of each version."""

    status: str
    action: str | None
    triggers: tuple[str, ...]


#: The version histories an alerted transaction may have here (one alert each, no list hit):
#: decided once from its alert (with or without the transaction already stored), or first from
#: the alert alone and again when the transaction arrived and brought its context.
ALERTED_HISTORIES = {("alert",), ("alert", "transaction")}


def _decided(handle: StackHandle, txs: list) -> list[Decided]:
    """For each transaction in sending order: status, final action, versions' triggers."""
    with psycopg.connect(handle.settings.db_url) as conn:
        rows = conn.execute(
            "SELECT t.transaction_id, t.status, d.action,"
            " ARRAY(SELECT h.version FROM decision_history h"
            "       WHERE h.transaction_id = t.transaction_id ORDER BY h.version),"
            " ARRAY(SELECT h.trigger FROM decision_history h"
            "       WHERE h.transaction_id = t.transaction_id ORDER BY h.version)"
            " FROM transactions t LEFT JOIN decisions d USING (transaction_id)"
            " WHERE t.transaction_id = ANY(%s)",
            ([tx.transaction_id for tx in txs],),
        ).fetchall()
    found: dict[str, Decided] = {}
    for tx_id, status, action, versions, triggers in rows:
        assert list(versions) == list(range(1, len(versions) + 1)), f"{tx_id}: {versions}"
        found[tx_id] = Decided(status, action, tuple(triggers))
    return [found.get(tx.transaction_id, Decided("missing", None, ())) for tx in txs]


def _check_histories(decided: list[Decided], label: str) -> Counter[int]:
    """Unalerted: never decided; alerted: an allowed history. The count of each version total."""
    wrong = [
        (i, d)
        for i, d in enumerate(decided)
        if (d.triggers not in ALERTED_HISTORIES if i % ALERT_EVERY == 0 else d.triggers != ())
    ]
    assert wrong == [], f"{label}: {len(wrong)} unexpected decision histories, first {wrong[:5]}"
    return Counter(len(d.triggers) for i, d in enumerate(decided) if i % ALERT_EVERY == 0)


def _drain(handle: StackHandle, merchants: list[str], txs: list) -> None:
    """Wait until every transaction is stored, then until everything sent before is handled."""
    done = wait_stored(handle.settings, merchants, at_least=len(txs), timeout_s=120)
    assert done == len(txs), f"{done} of {len(txs)} stored"
    with psycopg.connect(handle.settings.db_url) as conn:
        wait_past_everything_sent(handle, conn)  # the last alerts, and any replay's doubles


def test_scaling_one_to_three_and_back_during_a_run_changes_nothing(six: StackHandle) -> None:
    """Same input shape through one instance, then through 1 -> 3 -> 1 instances mid-feed.

    What must not change, and is compared: every transaction and alert stored once and counted
    once, every alert decided (BLOCK, the transaction BLOCKED, nothing left awaiting its
    transaction), and at every position the same status and final action as the single-instance
    run. Each alerted transaction's versions must also be one of ALERTED_HISTORIES: a second
    decision from a replayed alert, or a third version, fails the test.

    What is not compared: how many versions a decision took. An account's transaction and its
    alert share a partition number, so one instance reads both, but from two topics, and Kafka
    orders nothing across partitions: a poll may hold the alert and not yet its transaction
    (whichever was sent first). Then the alert is decided alone (version 1, trigger 'alert',
    without the transaction's merchant, device or city) and decided again when the transaction
    arrives (version 2, trigger 'transaction': the RISKY_MERCHANT reason, whose text carries the
    merchant's running count, makes it differ). When both come in one batch, or the transaction
    first, there is one version. Which happens depends on poll and batch boundaries, so on
    timing, with one instance as with three: a single-instance run gave 2 versions at a position
    where the scaled run gave 1 (both BLOCK), and runs of one instance differ among themselves.
    """
    paths = Paths(six.settings.state_path)
    run = uuid.uuid4().hex[:8]
    count = SCALE_RATE * 60  # at most: the feed runs until a while after the scale-down
    try:
        six.cli("up", "--only", "decide", "--decision-instances", "1")
        _wait_owners(six, [("decide-1", 3 * PARTITIONS)])
        # the single-instance reference run
        ref_merchants = [f"S1-{run}-M{j}" for j in range(MERCHANTS)]
        ref_txs, _, _ = _feed(six, f"S1-{run}", SCALE_RATE * 4, ref_merchants)
        _drain(six, ref_merchants, ref_txs)
        reference = _decided(six, ref_txs)
        ref_versions = _check_histories(reference, "one instance")

        merchants = [f"S3-{run}-M{j}" for j in range(MERCHANTS)]
        fed: dict = {}
        enough = threading.Event()

        def feed() -> None:
            fed["txs"], fed["alerts"], fed["first"] = _feed(
                six, f"S3-{run}", count, merchants, stop=enough
            )

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        time.sleep(3)
        six.cli("up", "--only", "decide", "--decision-instances", "3")
        _wait_owners(
            six, [("decide-1", PARTITIONS), ("decide-2", PARTITIONS), ("decide-3", PARTITIONS)]
        )
        time.sleep(2)
        six.cli("up", "--only", "decide", "--decision-instances", "1")
        _wait_owners(six, [("decide-1", 3 * PARTITIONS)])
        assert feeder.is_alive(), "the feed ended before the scale-down had taken effect"
        time.sleep(3)  # and goes on a while through the one instance left
        enough.set()
        feeder.join(120)
        txs, alerts, first = fed["txs"], fed["alerts"], fed["first"]
        _drain(six, merchants, txs)
        check_exactly_once(six.settings, txs, alerts, merchants)
        check_every_alert_decided(six, f"S3-{run}", alerts, first)
        scaled = _decided(six, txs)
        versions = _check_histories(scaled, "1 -> 3 -> 1 instances")
        print(
            f"versions per alerted transaction: one instance {dict(ref_versions)},"
            f" scaled {dict(versions)}"
        )
        # the same shape of input gives the same outcome at every position as with one instance
        period = len(reference)
        outcome = [(d.status, d.action) for d in reference]
        differ = [
            (i, scaled[i], reference[i % period])
            for i in range(len(scaled))
            if (scaled[i].status, scaled[i].action) != outcome[i % period]
        ]
        assert differ == [], f"{len(differ)} outcomes differ, first {differ[:5]}"
    finally:
        for name in ("decide-3", "decide-2", "decide-1"):
            stop_pidfile(paths.pidfile(name))
