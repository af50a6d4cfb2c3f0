"""The console on the whole pipeline in a real browser: the pipeline page's topics and lag, the
overview's charts, the rules page's precision, and the README's screenshots.

The stack is the full one (`stack`: PostgreSQL, Kafka, the Flink rules job, the decision
service and the console), so the figures come from real traffic.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Producer
from playwright.sync_api import Browser, Page, expect

from streamguard.domain.cases import Resolution
from streamguard.domain.models import Action
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config
from streamguard.store import cases
from streamguard.store.db import connect
from tests.consoledata import add_user, seed_decision
from tests.factories import make_transaction
from tests.stackfixture import StackHandle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

USER, PASSWORD = "joana", "pipeline browser password"


@pytest.fixture(scope="module")
def analyst(stack: StackHandle) -> str:
    add_user(stack.settings, USER, PASSWORD)
    return USER


@pytest.fixture()
def page(browser: Browser, stack: StackHandle, analyst: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        base_url=stack.settings.console_url, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto("/login?next=/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    yield page
    context.close()


def _send(stack: StackHandle, count: int, amount: str = "80.00") -> str:
    account = f"ACC-web-{uuid.uuid4().hex[:6]}"
    producer = Producer(producer_config(stack.settings))
    now = int(time.time() * 1000)
    for i in range(count):
        tx = make_transaction(account_id=account, amount=Decimal(amount), ts_ms=now + i)
        producer.produce(topics.TRANSACTIONS, key=account, value=tx.to_wire())
    producer.flush(30)
    return account


def test_the_pipeline_page_lists_the_topics_and_the_decision_services_lag(
    page: Page, stack: StackHandle
) -> None:
    account = _send(stack, 20)
    page.goto("/pipeline")
    for name in topics.ALL:
        expect(page.locator(f"#topics tr[data-topic='{name}']")).to_have_count(1)
    expect(page.locator("#kafka-health")).to_have_text("up")
    expect(page.locator("#flink-health")).to_have_text("RUNNING")
    decide = page.locator("section[data-group='streamguard-decide']")
    expect(decide).to_contain_text("PostgreSQL consumer_offsets")
    expect(decide.locator(".total-lag")).to_have_text(re.compile(r"^\d+$"))
    expect(decide.locator("tbody tr", has_text=topics.TRANSACTIONS)).to_have_count(
        stack.settings.transactions_partitions
    )
    # the rules job's position comes from the offsets Flink commits at each checkpoint: the
    # page is a snapshot, so it is read again until the first checkpoint has committed
    rules_lag = page.locator("section[data-group='streamguard-rules'] .total-lag")
    deadline = time.monotonic() + 60
    while not re.fullmatch(r"\d+", rules_lag.inner_text()) and time.monotonic() < deadline:
        time.sleep(2)
        page.reload()
    expect(rules_lag).to_have_text(re.compile(r"^\d+$"))
    page.click(f"#topics tr[data-topic='{topics.TRANSACTIONS}'] a >> nth=0")
    expect(page).to_have_url(re.compile(r"/pipeline/messages\?topic=transactions"))
    page.fill("input[name=key]", account)  # the newest are the rules job's heartbeats
    page.click("form.filters button")
    expect(page.locator("#messages tbody pre.json")).to_have_count(20)
    expect(page.locator("#messages tbody pre.json").first).to_contain_text('"transaction_id"')


def test_the_overview_draws_the_charts_and_switches_ranges(page: Page, stack: StackHandle) -> None:
    _send(stack, 30)
    expect(page.locator("#live-state")).to_contain_text("live", timeout=10_000)
    expect(page.locator("#chart polyline[data-line=tx]")).to_have_count(1, timeout=10_000)
    # the newest buckets of the transactions line rise above the zero line (y of 0 is the
    # largest) once the decision service has stored the 30; the live events redraw the chart
    page.wait_for_function(
        """() => {
            const line = document.querySelector("#chart polyline[data-line=tx]");
            const ys = line.getAttribute("points").split(" ").map(p => Number(p.split(",")[1]));
            return Math.min(...ys.slice(-3)) < Math.max(...ys);
        }""",
        timeout=60_000,
    )
    page.click("a.range[data-range='24h']")
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(page.locator("a.range.chosen")).to_have_text("24 h")
    page.goto("/?range=1h")
    expect(page.locator("a.range.chosen")).to_have_text("1 h")


def test_the_rules_page_shows_each_rules_parameters_and_precision(
    page: Page, stack: StackHandle
) -> None:
    seeded = seed_decision(stack.settings, action=Action.REVIEW)
    with connect(stack.settings) as conn:
        cases.resolve(conn, seeded.transaction_id, USER, Resolution.CONFIRMED_FRAUD, "seen")
        fraud, judged = conn.execute(
            "SELECT count(*) FILTER (WHERE r.resolution = 'CONFIRMED_FRAUD'), count(*)"
            " FROM case_resolutions r JOIN decisions d USING (transaction_id)"
            " WHERE 'HIGH_AMOUNT' = ANY (d.rule_ids)"
        ).fetchone()  # type: ignore[misc]
    # the view is cached for 30 s: this is the module's first visit of /rules
    page.goto("/rules")
    row = page.locator("#rules tr[data-rule='HIGH_AMOUNT']")
    expect(row).to_contain_text("threshold_brl")
    expect(row.locator(".precision-analysts")).to_contain_text(f"{100 * fraud / judged:.1f}%")
    expect(row.locator(".precision-analysts")).to_contain_text(f"{fraud} fraud / {judged} resolved")
    expect(page.locator("#rules tr[data-rule='HIGH_VELOCITY']")).to_have_count(1)


def test_screenshots_of_the_overview_the_pipeline_and_a_case(
    page: Page, stack: StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's screenshots (into $STREAMGUARD_SCREENSHOTS when set), checked non-empty."""
    folder = Path(os.environ.get("STREAMGUARD_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    _send(stack, 40)
    _send(stack, 2, amount="5000.00")
    seeded = seed_decision(stack.settings, merchant_name="Posto Avenida Ltda")
    expect(page.locator("#live-state")).to_contain_text("live", timeout=10_000)
    expect(page.locator("#chart polyline[data-line=tx]")).to_have_count(1, timeout=10_000)
    shots = {
        "console-overview.png": "/",
        "console-pipeline.png": "/pipeline",
        "console-case.png": f"/decisions/{seeded.transaction_id}",
    }
    for name, path in shots.items():
        if path != "/":
            page.goto(path)
        page.screenshot(path=str(folder / name), full_page=True)
        assert (folder / name).stat().st_size > 10_000
