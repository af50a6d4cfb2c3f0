"""The decision service's pure parts: validation into dead letters, card masking, list cache,
and which transactions a batch must (re)decide."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from streamguard.decide.decider import triggers
from streamguard.decide.lists import ListCache
from streamguard.decide.parse import split
from streamguard.domain.models import FraudAlert
from streamguard.domain.redaction import luhn_valid, redact_card_numbers
from streamguard.kafka import topics
from streamguard.store.ledger import ledger_row
from streamguard.store.lists import ListEntry, ListError, normalise
from tests.factories import make_transaction


class FakeMessage:
    """Just what split() reads from a confluent_kafka Message."""

    def __init__(self, topic: str, value: bytes | None, offset: int = 0, append_ms: int = 0):
        self._topic, self._value, self._offset, self._append = topic, value, offset, append_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"A1"

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (2, self._append) if self._append else (0, -1)


GOOD = json.loads(make_transaction(transaction_id="t1", account_id="A1").to_wire())


def variant(**changes: object) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


#: (payload, the start of the reason it must get)
CORPUS = [
    (b"{not json", "invalid JSON"),
    (b"", "invalid JSON"),
    (b"\xff\xfe\x00garbage", "invalid JSON"),
    (b"[1, 2, 3]", "schema"),
    (b'"just a string"', "schema"),
    (variant(transaction_id=...), "schema: transaction_id: Field required"),
    (variant(amount="12,50"), "schema: amount"),
    (variant(amount=-5), "schema: amount"),
    (variant(amount=1.005), "schema: amount"),
    (variant(card_last4="42"), "schema: card_last4"),
    (variant(channel="CASH"), "schema: channel"),
    (variant(ts_ms=0), "schema: ts_ms"),
    (variant(ts_ms=...), "schema: ts_ms: Field required (send ts_ms, epoch ms UTC, or timestamp"),
    (variant(ts_ms=..., timestamp="2025-06-02T12:00"), "schema: message: Value error, timestamp"),
    (variant(ts_ms="yesterday"), "schema: ts_ms"),
    (variant(state="Pernambuco"), "schema: state"),
    (variant(lat=123.0), "schema: lat"),
    (variant(account_id=""), "schema: account_id"),
    (variant(card_last4="42", card_number="4111 1111 1111 1111"), "schema: card_last4"),
]


@pytest.mark.parametrize(("payload", "reason"), CORPUS)
def test_malformed_transactions_become_dead_letters_with_a_reason(
    payload: bytes, reason: str
) -> None:
    batch = split([FakeMessage(topics.TRANSACTIONS, payload, offset=7)])
    assert batch.transactions == []
    [dead] = batch.dead
    assert dead.reason.startswith(reason), dead.reason
    assert (dead.topic, dead.offset) == (topics.TRANSACTIONS, 7)
    assert batch.offsets == {(topics.TRANSACTIONS, 0): 8}  # a dead letter is consumed too


def test_good_and_bad_are_split_and_the_offset_moves_past_both() -> None:
    tx = make_transaction(transaction_id="t1", account_id="A1")
    alert = FraudAlert(
        alert_id="R:t1",
        rule_id="R",
        severity="HIGH",
        score_weight=40,
        transaction_id="t1",
        account_id="A1",
        amount=Decimal("10.00"),
        ts_ms=1,
    )
    batch = split(
        [
            FakeMessage(topics.TRANSACTIONS, tx.to_wire(), 0, append_ms=tx.ts_ms + 1000),
            FakeMessage(topics.TRANSACTIONS, b"{", 1),
            FakeMessage(topics.FRAUD_ALERTS, alert.model_dump_json().encode(), 5, append_ms=2000),
        ]
    )
    assert [row.transaction_id for row in batch.transactions] == ["t1"]
    assert batch.transactions[0].append_ms == tx.ts_ms + 1000  # Kafka's append time
    assert batch.alert_append_ms() == {"t1": 2000}
    assert len(batch.dead) == 1
    assert batch.offsets == {(topics.TRANSACTIONS, 0): 2, (topics.FRAUD_ALERTS, 0): 6}


def test_a_card_number_in_a_dead_letter_is_masked() -> None:
    payload = variant(card_last4="42", card_number="4111 1111 1111 1111")
    [dead] = split([FakeMessage(topics.TRANSACTIONS, payload)]).dead
    assert b"4111 1111" not in (dead.payload or b"")
    assert b"************1111" in (dead.payload or b"")


def test_a_card_number_in_a_valid_transactions_text_is_stored_masked() -> None:
    payload = variant(merchant_name="Loja 4111 1111 1111 1111", device_id="5500000000000004")
    batch = split([FakeMessage(topics.TRANSACTIONS, payload)])
    assert batch.dead == []
    [row] = batch.transactions
    text = repr(row)
    assert "4111 1111" not in text and "5500000000000004" not in text
    assert "Loja ************1111" in text and "************0004" in text


def test_identifiers_that_look_like_card_numbers_are_kept_as_sent() -> None:
    # a UUID's digits may pass the Luhn check: masking it would break the join with its alerts
    tx_id = "41111111-1111-1111-a111-111111111111"
    payload = variant(transaction_id=tx_id, account_id="4111111111111111")
    [row] = split([FakeMessage(topics.TRANSACTIONS, payload)]).transactions
    assert row.transaction_id == tx_id and "4111111111111111" in repr(row)


def test_redaction_keeps_what_is_not_a_card_number() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    text = b'{"ts_ms":1795983778491,"id":"4111111111111112","pan":"5500-0000-0000-0004"}'
    assert redact_card_numbers(text) == (
        b'{"ts_ms":1795983778491,"id":"4111111111111112","pan":"************0004"}'
    )
    assert redact_card_numbers(None) is None


def cache_with(*entries: ListEntry) -> ListCache:
    cache = ListCache()
    cache.load(entries)
    return cache


def test_list_cache_matches_account_merchant_and_device() -> None:
    cache = cache_with(
        ListEntry("BLOCK", "MERCHANT", "M1", "fraud ring"),
        ListEntry("ALLOW", "ACCOUNT", "A1"),
        ListEntry("BLOCK", "DEVICE", "d9"),
    )
    assert {h.label for h in cache.hits("A1", "M1", "d1")} == {
        "BLOCK:MERCHANT:M1",
        "ALLOW:ACCOUNT:A1",
    }
    assert cache.hits("A2", "M2", "d1") == ()
    assert [h.label for h in cache.hits("A2", None, "d9")] == ["BLOCK:DEVICE:d9"]
    assert len(cache) == 3
    cache.load([])
    assert cache.hits("A1", "M1", "d9") == ()


def test_list_cache_finds_the_listed_rows_of_a_batch() -> None:
    cache = cache_with(
        ListEntry("BLOCK", "MERCHANT", "M1"),
        ListEntry("ALLOW", "ACCOUNT", "A1"),
        ListEntry("BLOCK", "DEVICE", "d9"),
    )
    keys = [("A1", "M0", "d0"), ("A2", "M1", "d0"), ("A2", "M0", "d9"), ("A2", "M0", "d0")]
    rows = [
        ledger_row(
            make_transaction(transaction_id=f"t{i}", account_id=a, merchant_id=m, device_id=d),
            None,
        )
        for i, (a, m, d) in enumerate(keys)
    ]
    assert [row.transaction_id for row in cache.listed(rows)] == ["t0", "t1", "t2"]
    assert cache_with(ListEntry("BLOCK", "ACCOUNT", "A9")).listed(rows) == []
    assert ListCache().listed(rows) == []


def test_list_values_are_checked_before_they_reach_the_database() -> None:
    assert normalise("block", "merchant", " M1 ") == ("BLOCK", "MERCHANT", "M1")
    for bad in (("deny", "account", "x"), ("block", "card", "x"), ("allow", "device", " ")):
        with pytest.raises(ListError):
            normalise(*bad)


def test_a_batch_decides_list_hits_alerts_and_transactions_awaited() -> None:
    cache = cache_with(ListEntry("BLOCK", "MERCHANT", "M-bad"))
    plain = make_transaction(transaction_id="t1")
    listed = make_transaction(transaction_id="t2", merchant_id="M-bad")
    awaited = make_transaction(transaction_id="t3")
    due = triggers(
        [ledger_row(tx, 1000) for tx in (plain, listed, awaited)],
        {"t9": 9000},
        cache=cache,
        new_alert_tx_ids=["t9"],
        decided_before=["t3"],
    )
    assert sorted(due) == ["t2", "t3", "t9"]  # t1: nothing fired, stays APPROVED
    assert due["t2"].kind == "transaction" and due["t9"].kind == "alert"
    assert due["t9"].append_at is not None and due["t9"].append_at.timestamp() == 9.0
