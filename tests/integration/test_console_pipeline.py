"""The console's pipeline view against a real stack: topics, lag per consumer, the message
browser, dead letters, /metrics; then Kafka and Flink stopped by PID while every page still
answers and says what is down.

The stack is this module's own (it is broken on purpose at the end), on free ports.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamguard.kafka import topics
from streamguard.kafka.browse import MAX_LIMIT, BrowseRequest, browse
from streamguard.kafka.client import producer_config
from streamguard.stack.process import Paths, read_pid, stop_pid
from tests.consoledata import add_user
from tests.factories import make_transaction
from tests.stackfixture import StackHandle, running_stack

pytestmark = pytest.mark.integration

USER, PASSWORD = "paula", "pipeline test password"
PAGES = (
    "/",
    "/decisions",
    "/cases",
    "/lists",
    "/pipeline",
    "/pipeline/messages?topic=transactions",
)


@pytest.fixture(scope="module")
def own_stack() -> Iterator[StackHandle]:
    with running_stack() as stack:
        add_user(stack.settings, USER, PASSWORD)
        yield stack


@pytest.fixture(scope="module")
def token(own_stack: StackHandle) -> str:
    result = own_stack.cli("console", "add-token", USER, "--label", "pipeline tests")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture()
def api(own_stack: StackHandle, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(
        base_url=own_stack.settings.console_url, headers=headers, timeout=10
    ) as client:
        yield client


@pytest.fixture()
def browser_session(own_stack: StackHandle) -> Iterator[httpx.Client]:
    """A logged-in session, as a browser holds it."""
    with httpx.Client(base_url=own_stack.settings.console_url, timeout=10) as client:
        html = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        answer = client.post(
            "/login",
            data={"username": USER, "password": PASSWORD, "csrf": csrf[1], "next": "/"},
        )
        assert answer.status_code == 303
        yield client


def _send(stack: StackHandle, account: str, count: int) -> list[str]:
    producer = Producer(producer_config(stack.settings))
    now = int(time.time() * 1000)
    sent = []
    for i in range(count):
        tx = make_transaction(account_id=account, ts_ms=now + i)
        producer.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
        sent.append(tx.transaction_id)
    producer.produce(topics.TRANSACTIONS, key=account, value=b"{not json")
    producer.flush(30)
    return sent


def _group(body: dict[str, Any], group_id: str) -> dict[str, Any]:
    return next(g for g in body["groups"] if g["group_id"] == group_id)


def _until(check, timeout_s: float = 60.0, every_s: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


def test_the_pipeline_shows_topics_brokers_and_every_consumers_lag(
    own_stack: StackHandle, api: httpx.Client
) -> None:
    account = f"ACC-pipe-{uuid.uuid4().hex[:6]}"
    _send(own_stack, account, 30)

    def caught_up() -> dict[str, Any] | None:
        body = api.get("/api/v1/pipeline").json()
        decide = _group(body, "streamguard-decide")
        stored = {(r["topic"], r["partition"]): r for r in decide["partitions"]}
        on_tx = [r for (t, _), r in stored.items() if t == topics.TRANSACTIONS]
        done = sum(r["position"] or 0 for r in on_tx) >= 31 and all(r["lag"] == 0 for r in on_tx)
        return body if done and body["dead_letter_reasons"] else None

    body = _until(caught_up)
    assert body, "the decision service's stored offsets never caught up on the pipeline page"
    assert body["health"]["kafka"] == "up" and body["health"]["flink_state"] == "RUNNING"
    assert [b["is_controller"] for b in body["brokers"]] == [True]
    by_name = {t["name"]: t for t in body["topics"]}
    assert set(topics.ALL) <= set(by_name)
    tx_topic = by_name[topics.TRANSACTIONS]
    assert [p[0] for p in tx_topic["partitions"]] == [0, 1, 2]
    assert tx_topic["messages"] >= 31 and tx_topic["retention"] not in ("", "—")
    decide = _group(body, "streamguard-decide")
    assert decide["offsets_from"] == "PostgreSQL consumer_offsets"
    assert {r["topic"] for r in decide["partitions"]} == {
        topics.TRANSACTIONS,
        topics.FRAUD_ALERTS,
        topics.LABELS,
    }
    assert any(r.startswith("invalid JSON") for r, _, _ in body["dead_letter_reasons"])
    flink = _until(
        lambda: (
            (f := _group(api.get("/api/v1/pipeline").json(), "streamguard-rules"))["total_lag"]
            is not None
            and f
        ),
        timeout_s=30,
    )
    assert flink, "the rules job's position on transactions never showed"
    assert flink["state"] == "RUNNING" and flink["total_lag"] >= 0
    assert {r["topic"] for r in flink["partitions"]} == {topics.TRANSACTIONS}


def test_the_message_browser_reads_by_key_from_an_offset_and_shows_dead_letter_reasons(
    own_stack: StackHandle, api: httpx.Client, browser_session: httpx.Client
) -> None:
    account = f"ACC-browse-{uuid.uuid4().hex[:6]}"
    sent = _send(own_stack, account, 5)
    answer = api.get(
        "/api/v1/pipeline/messages", params={"topic": topics.TRANSACTIONS, "key": account}
    ).json()
    values = [m["value"] for m in answer["messages"]]
    assert len(values) == 6 and values[0] == "{not json"  # newest first
    assert [s for s in sent if any(s in v for v in values)] == sent
    assert values[1].startswith("{\n  ")  # pretty JSON
    first = answer["messages"][-1]
    window = api.get(
        "/api/v1/pipeline/messages",
        params={
            "topic": topics.TRANSACTIONS,
            "partition": first["partition"],
            "offset": first["offset"],
            "limit": 2,
        },
    ).json()["messages"]
    assert [m["offset"] for m in window] == [first["offset"], first["offset"] + 1]
    dead = _until(
        lambda: [
            m
            for m in api.get(
                "/api/v1/pipeline/messages", params={"topic": topics.DEAD_LETTERS, "key": account}
            ).json()["messages"]
        ],
        timeout_s=30,
    )
    assert dead and dead[0]["reason"].startswith("invalid JSON")
    page = browser_session.get(
        "/pipeline/messages", params={"topic": topics.DEAD_LETTERS, "key": account}
    )
    assert page.status_code == 200 and "invalid JSON" in page.text
    refused = browser_session.get(
        "/pipeline/messages", params={"topic": "transactions", "offset": "1"}
    )
    assert refused.status_code == 422 and "needs a partition" in refused.text
    assert api.get("/api/v1/pipeline/messages", params={"topic": "nope"}).status_code == 404
    bad = api.get("/api/v1/pipeline/messages", params={"topic": "transactions", "offset": "1"})
    assert bad.status_code == 422 and "needs a partition" in bad.json()["detail"]


def _fill_browse_topic(stack: StackHandle, name: str, sizes: dict[int, int]) -> None:
    """A 3-partition topic: `sizes[p]` 10 kB uncompressed messages on partition p, each keyed
    and stamped `p:offset` / base + 3 * offset + p, then a transaction of 2 on partition 2
    (its commit marker takes the partition's last offset)."""
    admin = AdminClient({"bootstrap.servers": stack.settings.bootstrap_servers})
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(30)
    producer = Producer(producer_config(stack.settings, **{"compression.type": "none"}))
    base = int(time.time() * 1000)
    for p, size in sizes.items():
        for offset in range(size):
            producer.produce(
                name,
                key=f"{p}:{offset}",
                value=f"{p}:{offset}:".encode() + b"x" * 10_000,
                partition=p,
                timestamp=base + 3 * offset + p,
            )
    producer.flush(30)
    tx_config = {"transactional.id": f"{name}-tx", "message.timeout.ms": 30_000}
    tx_producer = Producer(producer_config(stack.settings, **tx_config))
    tx_producer.init_transactions(30)
    tx_producer.begin_transaction()
    for offset in (sizes[2], sizes[2] + 1):
        tx_producer.produce(
            name,
            key=f"2:{offset}",
            value=b"2:%d:tx" % offset,
            partition=2,
            timestamp=base + 3 * offset + 2,
        )
    tx_producer.commit_transaction(30)


def test_the_message_browser_reads_every_window_whole_when_it_spans_several_fetches(
    own_stack: StackHandle,
) -> None:
    """6 MB per partition is six fetches (1 MB each) and a key scan of it several consumes (of
    500 at most): the browser returns once each partition reached the end offset it fixed up
    front, having lost none on the way."""
    name = f"browse-{uuid.uuid4().hex[:6]}"
    sizes = {0: 600, 1: 600, 2: 3}
    _fill_browse_topic(own_stack, name, sizes)
    settings = own_stack.settings

    def keys(request: BrowseRequest) -> list[str]:
        return [m.key or "" for m in browse(settings, request)]

    newest = keys(BrowseRequest(name, partition=0, limit=MAX_LIMIT))
    assert newest == [f"0:{o}" for o in range(599, 399, -1)]  # newest first, all 200
    from_offset = keys(BrowseRequest(name, partition=1, limit=MAX_LIMIT, from_offset=5))
    assert from_offset == [f"1:{o}" for o in range(5, 205)]
    # partition 2: three plain, two in a transaction, and its marker at the last offset
    assert keys(BrowseRequest(name, partition=2, limit=10)) == [f"2:{o}" for o in range(4, -1, -1)]
    plain = [(3 * o + p, f"{p}:{o}") for p, size in sizes.items() for o in range(size)]
    stamped = sorted([*plain, (3 * 3 + 2, "2:3"), (3 * 4 + 2, "2:4")], reverse=True)
    every = keys(BrowseRequest(name, limit=MAX_LIMIT))
    assert every == [key for _, key in stamped[:MAX_LIMIT]]
    by_key = keys(BrowseRequest(name, key="1:599"))  # the last of 1,204 scanned
    assert by_key == ["1:599"]


def _metric(text: str, name: str) -> float:
    """The sum of a metric's samples named exactly `name` (any labels)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def test_metrics_count_transactions_alerts_decisions_lag_and_latency(
    own_stack: StackHandle, api: httpx.Client
) -> None:
    before = httpx.get(f"{own_stack.settings.console_url}/metrics").text
    account = f"ACC-metrics-{uuid.uuid4().hex[:6]}"
    producer = Producer(producer_config(own_stack.settings))
    tx = make_transaction(
        account_id=account, amount=Decimal("5000.00"), ts_ms=int(time.time() * 1000)
    )
    producer.produce(topics.TRANSACTIONS, key=account, value=tx.to_wire())
    producer.flush(30)

    def scraped() -> str | None:
        time.sleep(2)  # the scrape is cached for 2 s
        text = httpx.get(f"{own_stack.settings.console_url}/metrics").text
        grew = _metric(text, "streamguard_decision_latency_seconds_count") > _metric(
            before, "streamguard_decision_latency_seconds_count"
        )
        return text if grew else None

    after = _until(scraped, timeout_s=60, every_s=0)
    assert after, "no decision version reached the latency histogram"
    assert _metric(after, "streamguard_transactions_inserted_total") > _metric(
        before, "streamguard_transactions_inserted_total"
    )
    assert 'streamguard_alerts_total{rule_id="HIGH_AMOUNT"}' in after
    assert re.search(r'^streamguard_decisions\{action="(REVIEW|BLOCK)"\} [1-9]', after, re.M)
    assert _metric(after, "streamguard_decision_versions_total") >= 1
    assert 'streamguard_decision_latency_seconds_bucket{le="+Inf"}' in after
    lag_lines = [
        line for line in after.splitlines() if line.startswith("streamguard_consumer_lag{")
    ]
    assert any(
        'group="streamguard-decide"' in line and 'topic="transactions"' in line
        for line in lag_lines
    )
    assert 'streamguard_component_up{component="kafka"} 1.0' in after


def _stop_component(stack: StackHandle, name: str) -> None:
    pid = read_pid(Paths(stack.settings.state_path).pidfile(name))
    assert pid is not None, f"{name} has no PID file"
    stop_pid(pid, timeout_s=10)


def test_with_kafka_then_flink_stopped_every_page_answers_and_says_what_is_down(
    own_stack: StackHandle, api: httpx.Client, browser_session: httpx.Client
) -> None:
    _stop_component(own_stack, "kafka")
    said = _until(lambda: api.get("/api/v1/pipeline").json()["health"]["kafka"] == "down", 20)
    assert said, "the console never noticed that Kafka is down"
    for path in PAGES:
        started = time.monotonic()
        page = browser_session.get(path)
        took = time.monotonic() - started
        assert page.status_code == 200, path
        assert "Kafka is down" in page.text, path
        assert took < 5, f"{path} took {took:.1f} s with Kafka down"
    body = api.get("/api/v1/pipeline").json()
    assert body["topics"] == [] and _group(body, "streamguard-decide")["partitions"]
    assert api.get("/api/v1/pipeline/messages", params={"topic": "transactions"}).status_code == 503

    _stop_component(own_stack, "rules")
    said = _until(lambda: api.get("/api/v1/pipeline").json()["health"]["flink"] == "down", 20)
    assert said, "the console never noticed that Flink is down"
    for path in PAGES:
        page = browser_session.get(path)
        assert page.status_code == 200 and "Flink is down" in page.text, path
