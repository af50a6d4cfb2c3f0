"""The console's REST API and its role against a real PostgreSQL, the console started by
`streamguard up` on free ports (fixture `console_stack`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import psycopg
import pytest

from streamguard.domain.models import Action
from streamguard.store.db import connect, connect_console
from streamguard.store.migrate import migrations_dir
from tests.consoledata import add_user, seed_decision
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def token(console_stack: StackHandle) -> str:
    add_user(console_stack.settings, "ana", PASSWORD)
    result = console_stack.cli("console", "add-token", "ana", "--label", "tests")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture()
def api(console_stack: StackHandle, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=console_stack.settings.console_url, headers=headers) as client:
        yield client


@pytest.fixture()
def anonymous(console_stack: StackHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_stack.settings.console_url) as client:
        yield client


def test_up_reports_the_console_running_on_its_port(console_stack: StackHandle) -> None:
    status = console_stack.cli("status").stdout
    row = next(line for line in status.splitlines() if "console" in line)
    assert "running" in row and str(console_stack.settings.console_port) in row
    where = console_stack.cli("where").stdout
    first_address = next(line for line in where.splitlines() if "http://" in line)
    assert f"http://127.0.0.1:{console_stack.settings.console_port}" in first_address


def test_healthz_answers_without_login(anonymous: httpx.Client) -> None:
    assert anonymous.get("/api/v1/healthz").json() == {"status": "ok", "database": "ok"}


def test_every_read_needs_a_login_or_a_token(anonymous: httpx.Client) -> None:
    assert anonymous.get("/api/v1/decisions").status_code == 401
    assert anonymous.get("/api/v1/cases").status_code == 401
    bad = anonymous.get("/api/v1/cases", headers={"Authorization": "Bearer sg_forged"})
    assert bad.status_code == 401


def test_decision_by_id_has_reasons_alerts_and_history(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    seeded = seed_decision(console_stack.settings, action=Action.BLOCK)
    body = api.get(f"/api/v1/decisions/{seeded.transaction_id}").json()
    assert body["decision"]["action"] == "BLOCK"
    assert [r["weight"] for r in body["reasons"]] == [40, 5]
    assert body["alerts"][0]["evidence"] == {"amount": "5000.00", "threshold": "3000"}
    assert [v["version"] for v in body["history"]] == [1]
    assert body["transaction"]["status"] == "BLOCKED"
    assert "card_token" not in body["transaction"]
    assert body["recent"][0]["transaction_id"] == seeded.transaction_id


def test_unknown_ids_are_404_and_bad_input_422_with_the_reason(api: httpx.Client) -> None:
    assert api.get(f"/api/v1/decisions/{uuid.uuid4()}").status_code == 404
    assert api.post(f"/api/v1/cases/{uuid.uuid4()}/claim").status_code == 404
    bad_action = api.get("/api/v1/decisions", params={"action": "MAYBE"})
    assert bad_action.status_code == 422 and "action must be one of" in bad_action.json()["detail"]
    bad_cursor = api.get("/api/v1/decisions", params={"cursor": "not-ours"})
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]
    bad_limit = api.get("/api/v1/decisions", params={"limit": "0"})
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["detail"]


def test_search_pages_by_keyset_without_repeating_or_skipping(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    account = f"ACC-page-{uuid.uuid4().hex[:6]}"
    made = {
        seed_decision(console_stack.settings, account_id=account).transaction_id for _ in range(5)
    }
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"account_id": account, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/decisions", params=params).json()
        seen += [item["transaction_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    by_rule = api.get("/api/v1/decisions", params={"rule_id": "HIGH_AMOUNT", "limit": 200})
    assert made <= {item["transaction_id"] for item in by_rule.json()["items"]}
    none = api.get("/api/v1/decisions", params={"account_id": account, "action": "APPROVE"})
    assert none.json()["items"] == []


def test_claim_then_resolve_with_a_block_listing_in_one_action(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    seeded = seed_decision(console_stack.settings)
    claimed = api.post(f"/api/v1/cases/{seeded.transaction_id}/claim").json()
    assert claimed["new"] is True and claimed["case"]["claimed_by"] == "ana"
    body = {"resolution": "CONFIRMED_FRAUD", "note": "chargeback", "list_entities": ["MERCHANT"]}
    resolved = api.post(f"/api/v1/cases/{seeded.transaction_id}/resolve", json=body).json()
    assert resolved["listed"] == [f"BLOCK:MERCHANT:{seeded.merchant_id}"]
    assert resolved["case"]["status"] == "RESOLVED"
    with connect(console_stack.settings) as conn:
        row = conn.execute(
            "SELECT resolution, note, resolved_by, decision_version FROM case_resolutions"
            " WHERE transaction_id = %s",
            (seeded.transaction_id,),
        ).fetchone()
        entry = conn.execute(
            "SELECT added_by FROM list_entries WHERE list_type = 'BLOCK'"
            " AND entity_type = 'MERCHANT' AND entity_value = %s",
            (seeded.merchant_id,),
        ).fetchone()
        change = conn.execute(
            "SELECT changed_by FROM list_changes WHERE entity_value = %s", (seeded.merchant_id,)
        ).fetchone()
        versions = conn.execute(
            "SELECT count(*) FROM decision_history WHERE transaction_id = %s",
            (seeded.transaction_id,),
        ).fetchone()
    assert row == ("CONFIRMED_FRAUD", "chargeback", "ana", 1)
    assert entry == ("ana",) and change == ("ana",)
    assert versions == (1,)  # the resolution never wrote a decision version
    again = api.post(f"/api/v1/cases/{seeded.transaction_id}/resolve", json=body)
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]


def test_the_queue_api_filters_on_the_decisions_amount_and_009_backfills_it(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    # amounts no other test uses, so the least-amount queue holds only this one
    seeded = seed_decision(console_stack.settings, amount="876543.21")
    path = "/api/v1/cases?limit=200&min_amount="
    assert [c["transaction_id"] for c in api.get(path + "876543.21").json()["items"]] == [
        seeded.transaction_id
    ]
    assert api.get(path + "876543.22").json()["items"] == []
    migration = (migrations_dir() / "009_decision_amount.sql").read_text(encoding="utf-8")
    with connect(console_stack.settings) as conn:
        # a decision made from its alert alone (no transaction row), recorded before 009
        early = f"tx-early-{uuid.uuid4().hex[:8]}"
        conn.execute(
            "INSERT INTO fraud_alerts (alert_id, rule_id, severity, score_weight,"
            " transaction_id, account_id, amount, event_time)"
            " VALUES (%s, 'HIGH_AMOUNT', 'HIGH', 40, %s, 'ACC-early', 765.43, now())",
            (f"HIGH_AMOUNT:{early}", early),
        )
        conn.execute(
            "INSERT INTO decisions (transaction_id, account_id, action, score, version)"
            " VALUES (%s, 'ACC-early', 'REVIEW', 45, 1)",
            (early,),
        )
        # the schema before 009, then 009 itself; rolled back, so the stack keeps its schema
        conn.execute("ALTER TABLE decisions DROP COLUMN amount")
        conn.execute(migration)
        backfilled = dict(
            conn.execute(
                "SELECT transaction_id, amount FROM decisions WHERE transaction_id = ANY(%s)",
                ([seeded.transaction_id, early],),
            ).fetchall()
        )
        conn.rollback()
    assert backfilled == {seeded.transaction_id: Decimal("876543.21"), early: Decimal("765.43")}


def test_a_case_claimed_by_another_analyst_cannot_be_taken(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    seeded = seed_decision(console_stack.settings)
    add_user(console_stack.settings, "bruno", PASSWORD)
    other = console_stack.cli("console", "add-token", "bruno").stdout.strip().splitlines()[-1]
    first = api.post(f"/api/v1/cases/{seeded.transaction_id}/claim")
    assert first.status_code == 200
    second = api.post(
        f"/api/v1/cases/{seeded.transaction_id}/claim",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert second.status_code == 409 and "claimed by ana" in second.json()["detail"]


def test_resolve_refuses_an_unknown_resolution_with_422(
    console_stack: StackHandle, api: httpx.Client
) -> None:
    seeded = seed_decision(console_stack.settings)
    answer = api.post(
        f"/api/v1/cases/{seeded.transaction_id}/resolve", json={"resolution": "MAYBE"}
    )
    assert answer.status_code == 422 and "resolution" in answer.json()["detail"]


def test_lists_crud_through_the_api(api: httpx.Client) -> None:
    value = f"dev-{uuid.uuid4().hex[:6]}"
    entry = {"list_type": "ALLOW", "entity_type": "DEVICE", "value": value, "reason": "known"}
    assert api.post("/api/v1/lists", json=entry).status_code == 201
    assert api.post("/api/v1/lists", json=entry).status_code == 200
    listed = api.get("/api/v1/lists", params={"list_type": "ALLOW"}).json()
    assert any(e["entity_value"] == value and e["added_by"] == "ana" for e in listed)
    assert api.delete(f"/api/v1/lists/ALLOW/DEVICE/{value}").status_code == 200
    assert api.delete(f"/api/v1/lists/ALLOW/DEVICE/{value}").status_code == 404
    bad = api.post("/api/v1/lists", json={**entry, "entity_type": "CARD"})
    assert bad.status_code == 422


def test_a_session_write_without_its_csrf_header_is_refused(
    console_stack: StackHandle, anonymous: httpx.Client
) -> None:
    seeded = seed_decision(console_stack.settings)
    anonymous.get("/login")
    csrf = _csrf_of(anonymous.get("/login").text)
    login = anonymous.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf": csrf, "next": "/"}
    )
    assert login.status_code == 303
    refused = anonymous.post(f"/api/v1/cases/{seeded.transaction_id}/claim")
    assert refused.status_code == 403
    assert anonymous.get(f"/api/v1/cases/{seeded.transaction_id}").json()["status"] == "OPEN"


def _csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    return html.split(marker, 1)[1].split('"', 1)[0]


def test_the_console_role_cannot_touch_the_ledger_or_the_users(console_stack: StackHandle) -> None:
    seeded = seed_decision(console_stack.settings)
    for statement in (
        "UPDATE decisions SET score = 0 WHERE transaction_id = %s",
        "DELETE FROM decision_history WHERE transaction_id = %s",
        "UPDATE transactions SET status = 'APPROVED' WHERE transaction_id = %s",
        "INSERT INTO console_users (username, password_hash) VALUES (%s, 'x')",
        # it reads the generator's labels for the rules page's precision, never writes them
        "INSERT INTO transaction_labels VALUES (%s, 'ACC', 'legit', false)",
    ):
        with (
            connect_console(console_stack.settings) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement, (seeded.transaction_id,))
