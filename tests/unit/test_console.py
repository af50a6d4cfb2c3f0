"""The console's pure logic: sessions, passwords, cursors, filters, live rates, presentation."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from streamguard.console import present
from streamguard.console.filters import FilterError, decision_filter, queue_filter
from streamguard.console.live import flagged_share, rates
from streamguard.console.session import Session, csrf_ok, new_session, sign, unsign
from streamguard.domain.cases import CaseError, CaseState, CaseStatus, check_claim, check_note
from streamguard.domain.paging import CursorError, decode_cursor, encode_cursor
from streamguard.domain.passwords import (
    PasswordError,
    hash_password,
    token_digest,
    verify_password,
)

SECRET = b"s" * 32
NOW = 1_800_000_000.0


def test_a_signed_session_reads_back_and_a_tampered_one_does_not() -> None:
    session = new_session(NOW, "ana")
    cookie = sign(session, SECRET)
    assert unsign(cookie, SECRET, NOW) == session
    payload, mac = cookie.split(".")
    forged = sign(Session("root", session.csrf, session.expires), b"other secret")
    assert unsign(forged, SECRET, NOW) is None
    assert unsign(f"{forged.split('.')[0]}.{mac}", SECRET, NOW) is None
    assert unsign(cookie, b"another secret", NOW) is None
    assert unsign(cookie + "x", SECRET, NOW) is None
    assert unsign(None, SECRET, NOW) is None


def test_a_session_expires() -> None:
    session = new_session(NOW, "ana")
    assert unsign(sign(session, SECRET), SECRET, session.expires - 1) is not None
    assert unsign(sign(session, SECRET), SECRET, session.expires) is None


def test_csrf_needs_the_sessions_own_token() -> None:
    session = new_session(NOW)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, new_session(NOW).csrf)
    assert not csrf_ok(None, session.csrf)


def test_every_session_gets_a_fresh_csrf_token() -> None:
    assert new_session(NOW).csrf != new_session(NOW).csrf


def test_passwords_are_salted_scrypt_and_verify() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", "plain text")
    assert "correct horse" not in first


def test_a_short_password_is_refused() -> None:
    with pytest.raises(PasswordError):
        hash_password("short")


def test_tokens_are_stored_as_their_sha256() -> None:
    assert len(token_digest("sg_abc")) == 64 and token_digest("sg_abc") != token_digest("sg_abd")


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    at = datetime(2026, 12, 2, 18, 0, 1, 123456, tzinfo=timezone.utc)
    assert decode_cursor(encode_cursor(at, "tx-1")) == (at, "tx-1")
    for bad in ("not-ours", "", encode_cursor(at, "x")[:-3]):
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_the_decision_filter_normalises_and_refuses_with_reasons() -> None:
    found = decision_filter(action=" review ", rule_id="high_amount", since="2026-12-02T18:00")
    assert found.action == "REVIEW" and found.rule_id == "HIGH_AMOUNT"
    assert found.since == datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc)
    assert decision_filter(account_id="  ").account_id is None
    with pytest.raises(FilterError, match="action must be one of"):
        decision_filter(action="MAYBE")
    with pytest.raises(FilterError, match="not an ISO 8601 time"):
        decision_filter(since="yesterday")
    with pytest.raises(FilterError, match="since must be before until"):
        decision_filter(since="2026-12-02T18:00", until="2026-12-02T17:00")


def test_the_queue_filter_defaults_to_unresolved_reviews() -> None:
    now = datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc)
    assert queue_filter() == queue_filter(action="REVIEW", status="UNRESOLVED")
    found = queue_filter(action="block", min_amount="100.50", min_age_min="30", now=now)
    assert found.action == "BLOCK" and found.min_amount == Decimal("100.50")
    assert found.opened_before == now - timedelta(minutes=30)
    for bad in (
        {"action": "APPROVE"},
        {"status": "LOST"},
        {"min_amount": "NaN"},
        {"min_amount": "-1"},
        {"min_amount": "ten"},
        {"min_age_min": "1.5"},
    ):
        with pytest.raises(FilterError):
            queue_filter(**bad)


def test_live_rates_come_from_counter_deltas() -> None:
    samples: deque[tuple[float, int, int]] = deque([(0.0, 1000, 10)])
    assert rates(samples)["tx_per_s"] is None
    samples.extend([(1.0, 1020, 11), (2.0, 1040, 12), (6.0, 1120, 20), (7.0, 1140, 22)])
    figures = rates(samples)
    # the newest ~5 s: from t=2 to t=7, 100 transactions and 10 alerts
    assert figures["tx_per_s"] == 20.0 and figures["alerts_per_s"] == 2.0
    assert figures["tx_window"] == 140.0 and figures["window_s"] == 7.0


def test_the_flagged_share_waits_for_a_whole_minute_of_counters() -> None:
    assert flagged_share(9, 5.0, 7.0) is None  # a minute of decisions over 7 s of traffic
    assert flagged_share(9, 900.0, 59.0) == 1.0
    assert flagged_share(0, 0.0, 60.0) is None


def test_claims_and_resolutions_follow_the_case_rules() -> None:
    open_case = CaseState("t1", "REVIEW", CaseStatus.OPEN)
    assert check_claim(open_case, "ana") is True
    mine = CaseState("t1", "REVIEW", CaseStatus.CLAIMED, "ana")
    assert check_claim(mine, "ana") is False
    with pytest.raises(CaseError, match="claimed by ana"):
        check_claim(mine, "bruno")
    with pytest.raises(CaseError, match="already resolved"):
        check_claim(CaseState("t1", "REVIEW", CaseStatus.RESOLVED, "ana"), "ana")
    check_note("x" * 4000)
    with pytest.raises(ValueError):
        check_note("x" * 4001)


def test_presentation_is_decided_in_python() -> None:
    assert present.money(Decimal("1234567.5")) == "R$ 1.234.567,50"
    assert present.money(None) == "—"
    assert present.action_class("BLOCK") == "bad" and present.action_class("REVIEW") == "warn"
    assert present.action_class("APPROVED") == "ok" and present.action_class(None) == "none"
    assert present.weight(5) == "+5" and present.weight(-30) == "-30"
    shown = present.overview({"tx_per_s": 12.25, "open_cases": 1234, "latency_p99_ms": None})
    assert shown["tx_per_s"] == "12.2" and shown["open_cases"] == "1,234"
    assert shown["latency_p99_ms"] == "…"


def test_the_console_binds_loopback_on_8080_by_default_and_says_where() -> None:
    from streamguard.config import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.console_host, settings.console_port) == ("127.0.0.1", 8080)
    assert settings.console_url == "http://127.0.0.1:8080"
    assert Settings(_env_file=None, console_host="0.0.0.0").console_url.startswith(  # type: ignore[call-arg]
        "http://127.0.0.1:"
    )
    assert settings.console_db_url.startswith("postgresql://streamguard_console:")


def test_a_transaction_in_the_originals_shape_shows_its_unknowns_as_dashes() -> None:
    """Only the required core and a PIX key type: no 'None' anywhere, the key type shown."""
    from streamguard.console.web import env
    from streamguard.store.console_reads import DecisionFile, TransactionView

    moment = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)
    optional = dict.fromkeys(
        ("card_last4", "currency", "channel", "merchant_id", "merchant_mcc", "city", "state"),
    )
    optional |= dict.fromkeys(("merchant_name", "device_id", "ip_address"))
    tx = TransactionView(
        transaction_id="orig-1",
        account_id="A1",
        amount=Decimal("5000.00"),
        payee_key_type="email",
        event_time=moment,
        status="PENDING",
        **optional,  # type: ignore[arg-type]
    )
    file = DecisionFile("orig-1", tx, None, [], [], [], [tx], [])
    page = env.get_template("decision.html").render(
        file=file, case=None, csrf="x", user="u", path="/", down=[]
    )
    facts = page[page.index('id="transaction"') : page.index("</dl>")]
    recent = page[page.index('id="recent"') :]
    assert "None" not in facts and "None" not in recent
    assert "<dt>place</dt><dd>— (—)</dd>" in facts
    assert '<dd id="payee-key-type">email</dd>' in page
    assert "•••• " not in page  # no card, so no masked card either
    unpaid = env.get_template("decision.html").render(
        file=DecisionFile("orig-1", replace(tx, payee_key_type=None), None, [], [], [], [], []),
        case=None,
        csrf="x",
        user="u",
        path="/",
        down=[],
    )
    assert "PIX key type" not in unpaid
