"""The Backtests page in a real browser: start a run over a stored history, watch it end through
the pushed state, read the comparison; bad overrides, missing CSRF tokens and logins refused.

The stack is the full one (`stack`): the console started by `streamguard up` runs each backtest
in a worker process of its own against the stack's Kafka and PostgreSQL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.backtestdata import CANDIDATE, History, store_history
from tests.consoledata import add_user
from tests.stackfixture import StackHandle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

USER, PASSWORD = "renata", "backtest browser password"


@pytest.fixture(scope="module")
def history(stack: StackHandle) -> History:
    add_user(stack.settings, USER, PASSWORD)
    return store_history(stack, days_back=43)


@pytest.fixture()
def page(browser: Browser, stack: StackHandle, history: History) -> Iterator[Page]:
    context = browser.new_context(
        base_url=stack.settings.console_url, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto("/login?next=/backtests")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/backtests$"))
    yield page
    context.close()


def _runs(stack: StackHandle) -> int:
    with psycopg.connect(stack.settings.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM backtest_runs").fetchone()
    return int(row[0]) if row else 0


def _fill(page: Page, history: History, overrides: str) -> None:
    page.fill("input[name=start]", history.start.isoformat())
    page.fill("input[name=end]", history.end.isoformat())
    page.fill("textarea[name=overrides]", overrides)


def test_a_backtest_started_from_the_page_shows_the_changed_transactions(
    page: Page, history: History, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _fill(page, history, CANDIDATE)
    page.click("#start-backtest")
    expect(page).to_have_url(re.compile(r"/backtests/\d+$"))
    expect(page.locator("#run-overrides")).to_have_text(CANDIDATE)
    # the page is not reloaded by the test: the pushed state ends the wait and reloads it
    expect(page.locator("#run-status")).to_have_text("done", timeout=240_000)
    rows = page.locator("#changes tbody tr")
    expect(rows).to_have_count(2)
    shown = {rows.nth(i).get_attribute("data-tx") for i in range(2)}
    assert shown == history.changed
    for tx in history.changed:
        row = page.locator(f"#changes tr[data-tx='{tx}']")
        expect(row.locator("td").nth(3)).to_have_text("APPROVE")
        expect(row.locator("td").nth(5)).to_have_text("HIGH_AMOUNT")
    rule = page.locator("#backtest-rules tr[data-rule='HIGH_AMOUNT'] td")
    expect(rule.nth(1)).to_have_text("3")  # live alerts
    expect(rule.nth(2)).to_have_text("66.7%")  # live precision
    expect(rule.nth(5)).to_have_text("1")  # candidate alerts
    expect(page.locator("svg#actions rect")).to_have_count(6)
    expect(page.locator("svg#load")).to_be_visible()
    # the README's screenshot (into $STREAMGUARD_SCREENSHOTS when set), checked non-empty
    folder = Path(os.environ.get("STREAMGUARD_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "console-backtest.png"), full_page=True)
    assert (folder / "console-backtest.png").stat().st_size > 10_000
    changed = history.by_amount["3500.00"]
    page.click(f"#changes a[href='/decisions/{changed}']")
    expect(page.locator("#decision-action")).to_have_text(re.compile("REVIEW|BLOCK"))
    page.goto("/backtests")
    expect(page.locator("#backtests tbody tr").first.locator("td").nth(1)).to_have_text("done")


def test_a_bad_override_is_refused_with_its_reason_before_anything_runs(
    page: Page, stack: StackHandle, history: History
) -> None:
    before = _runs(stack)
    _fill(page, history, "HIGH_AMOUNT.threshold_brl=5000\nHIGH_AMOUNT.nope=1")
    page.click("#start-backtest")
    expect(page.locator("#backtest-error")).to_contain_text(
        "unknown rule parameter(s): HIGH_AMOUNT.nope"
    )
    expect(page.locator("textarea[name=overrides]")).to_have_value(
        "HIGH_AMOUNT.threshold_brl=5000\nHIGH_AMOUNT.nope=1"
    )
    _fill(page, history, "HIGH_AMOUNT.threshold_brl")
    page.click("#start-backtest")
    expect(page.locator("#backtest-error")).to_contain_text("is not RULE.param=value")
    assert _runs(stack) == before


def test_a_post_without_the_csrf_token_or_without_a_login_is_refused(
    page: Page, browser: Browser, stack: StackHandle, history: History
) -> None:
    before = _runs(stack)
    form = {"start": history.start.isoformat(), "end": history.end.isoformat()}
    form["overrides"] = CANDIDATE
    forged = page.request.post("/backtests", form=form, max_redirects=0)
    assert forged.status == 403 and "CSRF" in forged.text()
    context = browser.new_context(base_url=stack.settings.console_url)
    try:
        anonymous = context.request.post("/backtests", form={**form, "csrf": "x"}, max_redirects=0)
        assert anonymous.status == 401
        shown = context.new_page()
        shown.goto("/backtests")
        expect(shown).to_have_url(re.compile(r"/login\?next=/backtests$"))
    finally:
        context.close()
    assert _runs(stack) == before
