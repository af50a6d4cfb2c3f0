"""The console in a real browser: login, the review queue, escaping, CSRF and live counts.

The console and PostgreSQL are started by `streamguard up` on free ports (`console_stack`);
the cases are ledger rows written as the decision service writes them (tests/consoledata.py).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from streamguard.domain.models import Action
from streamguard.store.db import connect
from tests.consoledata import XSS, add_user, seed_decision
from tests.stackfixture import StackHandle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

USER, PASSWORD = "carla", "browser test password"


@pytest.fixture(scope="module")
def analyst(console_stack: StackHandle) -> str:
    add_user(console_stack.settings, USER, PASSWORD)
    return USER


@pytest.fixture()
def page(browser: Browser, console_stack: StackHandle) -> Iterator[Page]:
    context = browser.new_context(base_url=console_stack.settings.console_url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()


def log_in(page: Page, target: str = "/") -> None:
    page.goto(target)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_resolve_a_review_case_as_fraud_with_its_merchant_blocked(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    seeded = seed_decision(console_stack.settings, action=Action.REVIEW)
    log_in(page, "/cases?status=OPEN")
    page.click(f"a[href='/decisions/{seeded.transaction_id}#case']")
    expect(page.locator("#decision-action")).to_have_text("REVIEW")
    expect(page.locator("#case-status")).to_have_text("OPEN")
    page.check("input[name=resolution][value=CONFIRMED_FRAUD]")
    page.fill("textarea[name=note]", "customer confirmed the card was stolen")
    page.check("input[name=list_entity][value=MERCHANT]")
    page.click("#resolve")
    expect(page.locator("#case-status")).to_have_text("RESOLVED")
    expect(page.locator("#case-resolution")).to_have_text("confirmed fraud")
    expect(page.locator("#list-matches")).to_contain_text(f"BLOCK MERCHANT {seeded.merchant_id}")
    with connect(console_stack.settings) as conn:
        resolution = conn.execute(
            "SELECT resolution, note, resolved_by FROM case_resolutions WHERE transaction_id = %s",
            (seeded.transaction_id,),
        ).fetchone()
        listed = conn.execute(
            "SELECT added_by, reason FROM list_entries WHERE list_type = 'BLOCK'"
            " AND entity_type = 'MERCHANT' AND entity_value = %s",
            (seeded.merchant_id,),
        ).fetchone()
    assert resolution == ("CONFIRMED_FRAUD", "customer confirmed the card was stolen", USER)
    assert listed is not None and listed[0] == USER and seeded.transaction_id in listed[1]


def test_a_script_in_a_merchant_name_shows_as_text(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    seeded = seed_decision(console_stack.settings, merchant_name=XSS)
    log_in(page, f"/decisions/{seeded.transaction_id}")
    expect(page.locator("#merchant-name")).to_have_text(XSS)
    page.goto(f"/decisions?account_id={seeded.account_id}")
    expect(page.locator("#decisions tbody")).to_contain_text(XSS)
    page.goto("/cases?status=OPEN")
    expect(page.locator("#cases tbody")).to_contain_text(XSS)
    assert page.dialogs == []  # type: ignore[attr-defined]
    scripts = page.locator("script").evaluate_all("els => els.map(e => e.textContent)")
    assert all("alert(1)" not in text for text in scripts)


def test_nothing_is_written_without_login(page: Page, console_stack: StackHandle) -> None:
    seeded = seed_decision(console_stack.settings)
    page.goto(f"/decisions/{seeded.transaction_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    answer = page.request.post(
        f"/cases/{seeded.transaction_id}/resolve",
        form={"resolution": "LEGITIMATE", "csrf": "guess"},
        max_redirects=0,
    )
    assert answer.status == 401
    assert _case_rows(console_stack, seeded.transaction_id) == 0


def test_a_form_post_without_the_csrf_token_is_refused(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    seeded = seed_decision(console_stack.settings)
    log_in(page, f"/decisions/{seeded.transaction_id}")
    expect(page.locator("#case-status")).to_have_text("OPEN")
    for form in ({}, {"csrf": "not-this-sessions-token"}):
        answer = page.request.post(
            f"/cases/{seeded.transaction_id}/claim", form=form, max_redirects=0
        )
        assert answer.status == 403
    assert _case_rows(console_stack, seeded.transaction_id) == 0
    page.click("#claim")  # the page's own form carries the token
    expect(page.locator("#case-status")).to_have_text("CLAIMED")
    assert _case_rows(console_stack, seeded.transaction_id) == 1


def test_the_overview_counts_rise_live(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    log_in(page, "/")
    expect(page.locator("#live-state")).to_contain_text("live", timeout=10_000)
    before = int(page.locator("[data-field=open_cases]").inner_text().replace(",", ""))
    account = f"ACC-live-{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        seed_decision(console_stack.settings, account_id=account)
    expect(page.locator("[data-field=open_cases]")).to_have_text(f"{before + 3:,}", timeout=5_000)


def _case_rows(stack: StackHandle, transaction_id: str) -> int:
    with connect(stack.settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM cases WHERE transaction_id = %s", (transaction_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_pages_and_api_docs_make_no_external_request(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    origin = console_stack.settings.console_url
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    seeded = seed_decision(console_stack.settings)
    log_in(page, "/")
    expect(page.locator("#live-state")).to_contain_text("live", timeout=10_000)
    for path in (f"/decisions/{seeded.transaction_id}", "/decisions", "/cases", "/lists"):
        page.goto(path)
    page.goto("/docs")
    # swagger-ui (fetched by scripts/bootstrap.sh) renders the console's own OpenAPI schema
    expect(page.locator(".swagger-ui .title")).to_contain_text("StreamGuard console API")
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/cases/{transaction_id}/resolve")
    outside = [url for url in requested if not url.startswith(origin)]
    assert outside == [] and any(url.endswith("/openapi.json") for url in requested)


def test_the_lists_page_adds_and_removes_with_the_analyst_recorded(
    page: Page, console_stack: StackHandle, analyst: str
) -> None:
    value = f"ACC-list-{uuid.uuid4().hex[:6]}"
    log_in(page, "/lists")
    page.select_option("select[name=list_type]", "BLOCK")
    page.select_option("select[name=entity_type]", "ACCOUNT")
    page.fill("input[name=value]", value)
    page.fill("input[name=reason]", "mule account")
    page.click("form[action='/lists/add'] button")
    row = page.locator("#lists tbody tr", has_text=value)
    expect(row).to_contain_text("mule account")
    expect(row).to_contain_text(USER)
    assert _listed_by(console_stack, value) == [("ADD", USER)]
    row.locator("button", has_text="Remove").click()
    expect(page.locator("#lists tbody tr", has_text=value)).to_have_count(0)
    assert _listed_by(console_stack, value) == [("ADD", USER), ("REMOVE", USER)]


def _listed_by(stack: StackHandle, value: str) -> list[tuple[str, str]]:
    with connect(stack.settings) as conn:
        rows = conn.execute(
            "SELECT change, changed_by FROM list_changes WHERE entity_value = %s ORDER BY id",
            (value,),
        ).fetchall()
    return [(str(change), str(who)) for change, who in rows]


def test_screenshot_of_the_queue(
    page: Page, console_stack: StackHandle, analyst: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The queue's screenshot for the README (into $STREAMGUARD_SCREENSHOTS when set); the
    overview, pipeline and case shots come from the full stack (test_console_pipeline.py)."""
    folder = Path(os.environ.get("STREAMGUARD_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    seed_decision(console_stack.settings, merchant_name="Posto Avenida Ltda")
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, "/cases")
    expect(page.locator("#cases tbody")).to_contain_text("Posto Avenida Ltda")
    page.screenshot(path=str(folder / "console-queue.png"), full_page=True)
    assert (folder / "console-queue.png").stat().st_size > 10_000
