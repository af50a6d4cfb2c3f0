"""Event time that no single message can break, and alerts that do not wait for more traffic.

One whole stack (PostgreSQL, Kafka, the rules job, the decision service) serves the module, with the
watermark delay at 3 s so that a transaction 2 s out of order is within it. Each test uses its
own accounts. The clean-stack restart runs first, the poisoning last.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Consumer, Message, Producer

from streamguard.domain.event_time import AHEAD_OF_ARRIVAL, BEHIND_ARRIVAL
from streamguard.domain.models import FraudAlert, Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from tests.factories import make_transaction, noon_before
from tests.integration.sqlrows import SqlRows
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

WATERMARK_DELAY_S = 3
YEAR_MS = 365 * 86_400_000


@pytest.fixture(scope="module")
def sane_stack() -> Iterator[StackHandle]:
    """The whole pipeline, with the production heartbeat (1 s) and a 3 s watermark delay."""
    with running_stack(STREAMGUARD_WATERMARK_DELAY_S=str(WATERMARK_DELAY_S)) as stack:
        yield stack


class Alerts:
    """Every alert on `fraud_alerts` since the start, with Kafka's append time of each."""

    def __init__(self, stack: StackHandle) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": stack.settings.bootstrap_servers,
                "group.id": f"test-event-time-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topics.FRAUD_ALERTS])
        self.seen: dict[str, tuple[FraudAlert, int]] = {}

    def wait_for(self, alert_ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not alert_ids <= self.seen.keys():
            for message in self.consumer.consume(500, timeout=0.2):
                if message.error() is None:
                    alert = FraudAlert.model_validate_json(message.value() or b"")
                    self.seen.setdefault(alert.alert_id, (alert, message.timestamp()[1]))
        missing = alert_ids - self.seen.keys()
        assert not missing, f"alerts never arrived: {sorted(missing)}"

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def alerts(sane_stack: StackHandle) -> Iterator[Alerts]:
    log = Alerts(sane_stack)
    yield log
    log.close()


def tx(account: str, label: str, ts_ms: int, amount: str = "35.00") -> Transaction:
    return make_transaction(
        transaction_id=f"{account}-{label}", account_id=account, amount=Decimal(amount), ts_ms=ts_ms
    )


def send(stack: StackHandle, *txs: Transaction, partition: int | None = None) -> dict[str, int]:
    """Produce, wait for every delivery; return each transaction's Kafka append time (ms)."""
    producer = Producer(producer_config(stack.settings))
    appended: dict[str, int] = {}

    def delivered(err: object, message: Message, tx_id: str) -> None:
        assert err is None, err
        appended[tx_id] = message.timestamp()[1]

    for item in txs:
        extra = {} if partition is None else {"partition": partition}
        producer.produce(
            topics.TRANSACTIONS,
            key=item.account_id,
            value=item.to_wire(),
            on_delivery=lambda err, msg, i=item.transaction_id: delivered(err, msg, i),
            **extra,
        )
    assert producer.flush(30) == 0
    return appended


def burst(account: str, start_ms: int, count: int = 5) -> list[Transaction]:
    """`count` transactions of one account 100 ms apart: HIGH_VELOCITY from the 4th."""
    return [tx(account, f"b{n}", start_ms + n * 100) for n in range(1, count + 1)]


def now_ms() -> int:
    return int(time.time() * 1000)


def query(stack: StackHandle, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(stack.settings.db_url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_rows(stack: StackHandle, sql: str, *params: object, timeout_s: float = 30) -> list:
    deadline = time.monotonic() + timeout_s
    rows: list = []
    while time.monotonic() < deadline and not rows:
        rows = query(stack, sql, *params)
        time.sleep(0.3)
    return rows


def test_a_burst_right_after_a_restart_is_alerted(sane_stack: StackHandle, alerts: Alerts) -> None:
    run = uuid.uuid4().hex[:6]
    before = f"RST-{run}-before"
    send(sane_stack, *burst(before, now_ms()))
    alerts.wait_for({f"HIGH_VELOCITY:{before}-b4"}, timeout_s=60)

    sane_stack.cli("down", "--keep", timeout=120)  # ./stop.sh --keep
    sane_stack.cli("up", timeout=300)  # ./start.sh, without the generator
    after = f"RST-{run}-after"
    send(sane_stack, *burst(after, now_ms()))
    # No traffic follows: only the restarted rules process's heartbeats can close the window.
    alerts.wait_for({f"HIGH_VELOCITY:{after}-b4", f"HIGH_VELOCITY:{after}-b5"}, timeout_s=60)


def test_a_quiet_tail_is_alerted_within_the_watermark_delay_plus_3_s(
    sane_stack: StackHandle, alerts: Alerts
) -> None:
    run = uuid.uuid4().hex[:6]
    bound_ms = (WATERMARK_DELAY_S + 3) * 1000
    latencies = []
    for n in range(5):  # one burst at a time, nothing else on the topic meanwhile
        account = f"QT-{run}-{n}"
        appended = send(sane_stack, *burst(account, now_ms()))
        last = f"HIGH_VELOCITY:{account}-b5"
        alerts.wait_for({last}, timeout_s=bound_ms / 1000 + 30)
        latencies.append(alerts.seen[last][1] - appended[f"{account}-b5"])
    print(f"last transaction to its alert, ms: {sorted(latencies)}")  # shown by pytest -rP
    assert max(latencies) <= bound_ms, f"burst to alert, ms: {latencies}"


def test_disorder_within_the_delay_counts_and_old_events_are_handled_as_documented(
    sane_stack: StackHandle, alerts: Alerts
) -> None:
    run = uuid.uuid4().hex[:6]
    base = now_ms()
    account = f"DIS-{run}"
    # c arrives after d although it happened 2 s before it: only counted, d is the 4th.
    send(sane_stack, tx(account, "a", base), tx(account, "b", base + 100))
    send(sane_stack, tx(account, "d", base + 2200))
    send(sane_stack, tx(account, "c", base + 200))
    # An hour or more old: late for every window, judged by the stateless rules, stored. At
    # noon in São Paulo, so that NIGHT_SPENDING never joins in at night.
    late = tx(f"OLD-{run}", "hour", noon_before(now_ms()), amount="5000.00")
    # Twenty years old (beyond STREAMGUARD_MAX_EVENT_AGE_S): refused, like seconds sent as ms.
    ancient = tx(f"OLD-{run}", "ancient", now_ms() - 20 * YEAR_MS, amount="5000.00")
    send(sane_stack, late, ancient)

    alerts.wait_for({f"HIGH_VELOCITY:{account}-d", f"HIGH_AMOUNT:{late.transaction_id}"}, 60)
    evidence = alerts.seen[f"HIGH_VELOCITY:{account}-d"][0].evidence
    assert evidence["count"] == "4" and evidence["first_transaction_id"] == f"{account}-a"

    reasons = wait_rows(
        sane_stack,
        "SELECT reason FROM dead_letters WHERE convert_from(payload, 'UTF8') LIKE %s",
        f"%{ancient.transaction_id}%",
    )
    assert [r[0].split(":")[0] for r in reasons] == [BEHIND_ARRIVAL]
    stored = wait_rows(
        sane_stack,
        "SELECT transaction_id FROM transactions WHERE account_id = %s",
        f"OLD-{run}",
    )
    assert stored == [(late.transaction_id,)]
    assert f"HIGH_AMOUNT:{ancient.transaction_id}" not in alerts.seen
    assert f"HIGH_VELOCITY:{account}-c" not in alerts.seen  # c is the 3rd in event time


def test_a_late_burst_and_a_late_card_test_fire_no_windowed_rule_on_the_live_job(
    sane_stack: StackHandle, alerts: Alerts
) -> None:
    """The late-event policy on the Kafka job: a late event is stored and judged by the
    stateless rules, but never completes a window or a pattern (rules/README.md)."""
    run = uuid.uuid4().hex[:6]
    account = f"LATE-{run}"
    old = noon_before(now_ms())  # hours behind the watermark, at noon: no NIGHT_SPENDING
    late = [
        *(tx(account, f"l{n}", old + n * 100) for n in range(1, 5)),  # a burst: 4 in 0.4 s
        *(tx(account, f"s{n}", old + 1000 + n * 100, amount="1.00") for n in range(1, 4)),
        tx(account, "big", old + 1500, amount="2500.00"),  # 3 tiny, then a large one
    ]
    send(sane_stack, *late)
    # Then a burst stamped now on the same account (its partition, read after the late ones):
    # once its alert is out, the job has read and judged every late event before it.
    fresh = burst(account, now_ms(), count=4)
    send(sane_stack, *fresh)
    alerts.wait_for({f"HIGH_VELOCITY:{account}-b4"}, timeout_s=60)
    assert alerts.seen[f"HIGH_VELOCITY:{account}-b4"][0].evidence["count"] == "4"
    fired = sorted(a for a in alerts.seen if a.split(":", 1)[1].startswith(f"{account}-"))
    assert fired == [f"HIGH_VELOCITY:{account}-b4"], fired
    stored = wait_rows(
        sane_stack,
        "SELECT count(*) FROM transactions WHERE account_id = %s HAVING count(*) = %s",
        account,
        len(late) + len(fresh),
    )
    assert stored == [(len(late) + len(fresh),)], "a late event was not stored"


def test_the_on_time_view_never_passes_a_late_row_on_the_live_topic(
    sane_stack: StackHandle,
) -> None:
    """`transactions_on_time` itself, read from Kafka: a plain query over it (no window operator
    that would drop late rows on its own) prints the on-time rows and none of the late ones."""
    run = uuid.uuid4().hex[:6]
    account = f"ONT-{run}"
    query = f"SELECT transaction_id FROM transactions_on_time WHERE account_id = '{account}'"
    with SqlRows(sane_stack, query, "-n", "1000") as rows:
        # The query reads from the latest offsets: resend a marker until one is printed, then
        # give the heartbeats (1 s) time to set a watermark on every partition.
        printed: list[str] = []
        for n in range(30):
            send(sane_stack, tx(account, f"m{n}", now_ms()))
            try:
                printed = rows.first_value_until(f"{account}-m{n}", timeout_s=4)
                break
            except AssertionError:
                continue
        assert printed, "the query never printed a row"
        time.sleep(3 * sane_stack.settings.heartbeat_interval_s + 1)
        old = noon_before(now_ms())
        late = [tx(account, f"late{n}", old + n * 100) for n in range(3)]
        send(sane_stack, *late, tx(account, "fresh", now_ms()))
        after = rows.first_value_until(f"{account}-fresh", timeout_s=60)
    assert not [row for row in after if "late" in row], after


def test_a_transaction_ten_years_ahead_is_refused_and_blinds_nothing(
    sane_stack: StackHandle, alerts: Alerts
) -> None:
    run = uuid.uuid4().hex[:6]
    partitions = sane_stack.settings.transactions_partitions
    # One on every partition: heartbeats alone would hold back a single partition's watermark
    # (the job's is the least of them), so only the bound keeps these from moving event time.
    poisons = [
        tx(f"POI-{run}", f"future{p}", now_ms() + 10 * YEAR_MS, amount="5000.00")
        for p in range(partitions)
    ]
    for p, poison in enumerate(poisons):
        send(sane_stack, poison, partition=p)
    time.sleep(3 * sane_stack.settings.idle_timeout_s + 2)  # then the partitions go idle
    for p in range(partitions):
        send(sane_stack, *burst(f"POI-{run}-p{p}", now_ms()), partition=p)
    alerts.wait_for({f"HIGH_VELOCITY:POI-{run}-p{p}-b4" for p in range(partitions)}, 60)

    for poison in poisons:
        reasons = wait_rows(
            sane_stack,
            "SELECT reason FROM dead_letters WHERE convert_from(payload, 'UTF8') LIKE %s",
            f"%{poison.transaction_id}%",
        )
        assert len(reasons) == 1, poison.transaction_id
        assert reasons[0][0].startswith(f"{AHEAD_OF_ARRIVAL}: event time is ")
        assert "STREAMGUARD_MAX_FUTURE_SKEW_S (5 s)" in reasons[0][0]
        assert f"HIGH_AMOUNT:{poison.transaction_id}" not in alerts.seen  # the rules skip it
    assert not query(
        sane_stack,
        "SELECT 1 FROM transactions WHERE transaction_id = ANY(%s)",
        [poison.transaction_id for poison in poisons],
    )
