"""The fast path and the pydantic contract, side by side: the fast path never accepts what the
contract rejects, and when it accepts, its COPY line holds exactly the contract's values. Where
it declines, the caller (parse.split) reaches the contract's verdict: the same row, or a dead
letter."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from streamguard.decide.fastparse import label_rows
from streamguard.decide.fastparse import ledger_row as fast_row
from streamguard.decide.parse import split
from streamguard.domain.event_time import EventTimeBounds
from streamguard.domain.models import (
    MAX_LABEL_BATCH,
    FraudLabel,
    Transaction,
    from_epoch_ms,
    labels_from_json,
)
from streamguard.generate.simple import random_transaction
from streamguard.kafka import topics
from streamguard.store import ledger
from streamguard.store.ledger import (
    LABEL_COLUMNS,
    TX_COLUMNS,
    LabelRow,
    LedgerRow,
    label_row,
    ledger_row,
)
from tests.unit.test_decide import FakeMessage

#: Kafka's append time: just after the corpus (stamped now), so its event times are believable.
APPEND_MS = int(time.time() * 1000) + 1_123
BOUNDS = EventTimeBounds()
CANONICAL = [random_transaction(random.Random(seed)).to_wire() for seed in range(300)]
BASE = json.loads(CANONICAL[0])

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    " x",
    "x ",
    "x",
    0,
    1,
    -1,
    1.5,
    -0.0,
    1.005,
    1e-7,
    10**12,
    999_999_999_999.99,
    12_345_678_901_234.5,
    1e300,
    2**63,
    True,
    [],
    {},
    "5.00",
    "١٢٣٤",
    "a\tb",
    "a\\b",
    "a\nb",
    "\\N",
    "São José",
    "1234",
    "sp",
    "SP",
    "B1L",
    "BRL",
    "PIX",
    "pix",
    "\u00a0x",
    "x\u2003",
]


def length_edges(field: str) -> list[str]:
    """A text field's longest allowed value and one character more."""
    metadata = Transaction.model_fields[field].metadata
    limits = [m.max_length for m in metadata if getattr(m, "max_length", None) is not None]
    return [edge * "x" for limit in limits for edge in (limit, limit + 1)]


def variants(field: str) -> list[Any]:
    """Every odd value for the field, its length edges, and `...` for the field left out."""
    return [*ODD_VALUES, *length_edges(field), ...]


def with_value(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of the message with the field set to the value, or left out for `...`."""
    body = dict(base)
    if value is ...:
        del body[field]
    else:
        body[field] = value
    return body


def contract_row(payload: bytes) -> LedgerRow | None:
    """The contract: the pydantic model, then the event-time bounds against the append time."""
    try:
        tx = Transaction.model_validate_json(payload)
        if BOUNDS.violation(tx.ts_ms, APPEND_MS) is not None:
            return None
        return ledger_row(tx, APPEND_MS)
    except (ValidationError, ValueError):
        return None


#: Where the COPY line holds the amount, the coordinates and the two timestamps.
AMOUNT = TX_COLUMNS.index("amount")
COORDINATES = (TX_COLUMNS.index("lat"), TX_COLUMNS.index("lon"))
TIMESTAMPS = (TX_COLUMNS.index("event_time"), TX_COLUMNS.index("kafka_append_at"))


def read_line(line: str) -> list[Any]:
    """What PostgreSQL reads from a COPY text line, as Python values of the contract's types."""
    assert line.endswith("\n") and "\\" not in line.replace("\\N", "")
    fields: list[str | None] = [None if f == "\\N" else f for f in line[:-1].split("\t")]
    assert len(fields) == len(TX_COLUMNS)
    values: list[Any] = list(fields)
    values[AMOUNT] = Decimal(fields[AMOUNT]).quantize(Decimal("0.01"))  # type: ignore[arg-type]
    for index in COORDINATES:
        values[index] = None if fields[index] is None else float(fields[index])  # type: ignore[arg-type]
    for index in TIMESTAMPS:
        text = fields[index]
        assert text is not None
        date, _, offset = text.rpartition("+")
        assert offset == "00"
        seconds, _, millis = date.partition(".")
        moment = from_epoch_ms(0).fromisoformat(seconds + "+00:00")
        values[index] = from_epoch_ms(int(moment.timestamp()) * 1000 + int(millis))
    return values


def caller_row(payload: bytes) -> LedgerRow | None:
    """What parse.split makes of the message: its ledger row, or None for a dead letter."""
    batch = split([FakeMessage(topics.TRANSACTIONS, payload, append_ms=APPEND_MS)])  # type: ignore[list-item]
    assert batch.size == 1
    assert len(batch.transactions) + len(batch.dead) == 1
    return batch.transactions[0] if batch.transactions else None


def stored_values(row: LedgerRow) -> tuple[tuple, list[Any]]:
    """A row's keys and the values PostgreSQL would store, whichever path made it."""
    if isinstance(row.copy, str):
        return tuple(row[:5]), read_line(row.copy)
    values = list(row.copy)
    values[AMOUNT] = values[AMOUNT].quantize(Decimal("0.01"))
    return tuple(row[:5]), values


def same(fast: LedgerRow, contract: LedgerRow) -> bool:
    assert isinstance(fast.copy, str) and isinstance(contract.copy, tuple)
    keys = fast[:5] == contract[:5]
    expected = list(contract.copy)
    expected[AMOUNT] = expected[AMOUNT].quantize(Decimal("0.01"))
    return (
        keys
        and read_line(fast.copy) == expected
        and str(read_line(fast.copy)[AMOUNT]) == str(expected[AMOUNT])
    )


def test_canonical_messages_take_the_fast_path_with_the_contract_row() -> None:
    for payload in CANONICAL:
        fast = fast_row(payload, APPEND_MS)
        assert fast is not None, payload
        assert same(fast, contract_row(payload)), payload  # type: ignore[arg-type]


@pytest.mark.parametrize("field", list(BASE))
def test_odd_values_of_a_field_reach_the_contracts_verdict(field: str) -> None:
    for value in variants(field):
        body = with_value(BASE, field, value)
        payload = json.dumps(body).encode()
        fast = fast_row(payload, APPEND_MS)
        contract = contract_row(payload)
        verdict = caller_row(payload)
        if contract is None:
            assert fast is None, f"fast path accepted what the contract rejects: {body}"
            assert verdict is None, f"the caller stored what the contract rejects: {body}"
        else:
            if fast is not None:
                assert same(fast, contract), (fast, contract)
            assert verdict is not None, f"the caller rejected what the contract accepts: {body}"
            assert stored_values(verdict) == stored_values(contract), (verdict, contract)


@pytest.mark.parametrize(
    "payload", [b"", b"{", b"[]", b"null", b'"x"', b"\xff", b'{"amount": NaN}', b"{}"]
)
def test_not_an_object_goes_to_the_contract(payload: bytes) -> None:
    assert fast_row(payload, APPEND_MS) is None


def test_values_copy_would_escape_take_the_contract_path() -> None:
    for value in ("a\tb", "a\\b", "line\nbreak", "\\N"):
        payload = json.dumps({**BASE, "merchant_name": value}).encode()
        assert fast_row(payload, APPEND_MS) is None
        assert contract_row(payload) is not None
    accented = json.dumps({**BASE, "city": "São José"}).encode()  # JSON escapes it: \u00e3
    assert b"\\u00e3" in accented
    fast = fast_row(accented, APPEND_MS)
    assert fast is not None and "São José" in fast.copy


# Labels: the generator's ground truth, one label or a batch of them per message.

LABEL = {"transaction_id": "t-1", "account_id": "ACC-1", "scenario": "legit", "is_fraud": False}


def contract_label(payload: bytes) -> LabelRow | None:
    try:
        return label_row(FraudLabel.model_validate_json(payload))
    except ValidationError:
        return None


def fast_label(payload: bytes) -> LabelRow | None:
    """The fast path's row of a one-label message."""
    rows = label_rows(payload)
    assert rows is None or len(rows) == 1
    return rows[0] if rows else None


def caller_label(payload: bytes) -> LabelRow | None:
    """What parse.split makes of a label message: its row, or None for a dead letter."""
    batch = split([FakeMessage(topics.LABELS, payload)])  # type: ignore[list-item]
    assert batch.size == 1
    return batch.labels[0] if batch.labels else None


def test_the_label_fast_path_reads_every_field_of_the_contract_in_the_tables_order() -> None:
    assert tuple(FraudLabel.model_fields) == LABEL_COLUMNS
    stage = ledger._STAGES["transaction_labels"]
    assert tuple(column.split()[0] for column in stage.split(", ")) == LABEL_COLUMNS


def test_the_generators_labels_take_the_fast_path_with_the_contract_row() -> None:
    fraud = {**LABEL, "scenario": "card_testing", "is_fraud": True}
    for body in (LABEL, fraud):
        payload = json.dumps(body, separators=(",", ":")).encode()
        assert fast_label(payload) == contract_label(payload) == tuple(body.values())


@pytest.mark.parametrize("field", list(LABEL))
def test_odd_values_of_a_label_field_reach_the_contracts_verdict(field: str) -> None:
    for value in [*ODD_VALUES, ...]:
        body = with_value(LABEL, field, value)
        payload = json.dumps(body).encode()
        fast, contract = fast_label(payload), contract_label(payload)
        if contract is None:
            assert fast is None, f"fast path accepted what the contract rejects: {body}"
        elif fast is not None:
            assert repr(fast) == repr(contract), (fast, contract)
        assert repr(caller_label(payload)) == repr(contract), body


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b"null", b'"x"', b"\xff", b"{}"])
def test_a_label_that_is_not_an_object_goes_to_the_contract(payload: bytes) -> None:
    assert fast_label(payload) is None
    assert caller_label(payload) is None  # a dead letter


def labels_message(bodies: list[dict[str, Any]]) -> FakeMessage:
    return FakeMessage(topics.LABELS, json.dumps(bodies, separators=(",", ":")).encode())


def test_a_batch_of_labels_takes_the_fast_path_with_the_contracts_rows() -> None:
    bodies = [{**LABEL, "transaction_id": f"t-{i}", "is_fraud": i % 7 == 0} for i in range(500)]
    payload = json.dumps(bodies, separators=(",", ":")).encode()
    rows = [tuple(body.values()) for body in bodies]
    assert label_rows(payload) == rows
    assert [label_row(label) for label in labels_from_json(payload)] == rows
    batch = split([labels_message(bodies), labels_message(bodies[:1])])  # type: ignore[list-item]
    assert batch.labels == [*rows, rows[0]] and not batch.dead
    assert batch.size == 501 and batch.offsets == {(topics.LABELS, 0): 1}


@pytest.mark.parametrize("field", list(LABEL))
def test_a_batch_with_one_bad_label_is_dead_lettered_whole_naming_it(field: str) -> None:
    bodies = [{**LABEL, "transaction_id": f"t-{i}"} for i in range(5)]
    bodies[3] = with_value(LABEL, field, ...)  # the field left out
    message = labels_message(bodies)
    assert label_rows(message.value()) is None
    batch = split([message])  # type: ignore[list-item]
    assert not batch.labels and len(batch.dead) == 1
    assert batch.dead[0].reason == f"schema: 3.{field}: Field required"
    assert batch.dead[0].payload == message.value()  # kept whole, nothing lost


@pytest.mark.parametrize("count", [0, MAX_LABEL_BATCH + 1])
def test_a_batch_of_no_labels_or_too_many_is_a_dead_letter(count: int) -> None:
    message = labels_message([LABEL] * count)
    assert label_rows(message.value()) is None
    batch = split([message])  # type: ignore[list-item]
    assert not batch.labels and len(batch.dead) == 1
    assert batch.dead[0].reason.startswith("schema: message: List should have at")


def test_a_full_batch_is_accepted() -> None:
    bodies = [{**LABEL, "transaction_id": f"t-{i}"} for i in range(MAX_LABEL_BATCH)]
    batch = split([labels_message(bodies)])  # type: ignore[list-item]
    assert len(batch.labels) == MAX_LABEL_BATCH and not batch.dead
