"""The data contract: wire format and validation."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from streamguard.domain.models import Action, Transaction, from_epoch_ms, to_epoch_ms
from tests.factories import make_transaction


def tx(**overrides: object) -> Transaction:
    return make_transaction(**{"transaction_id": "t-1", "amount": Decimal("5000.00"), **overrides})


def test_wire_amount_is_an_exact_json_number() -> None:
    wire = tx(amount=Decimal("0.10")).to_wire()
    assert b'"amount":0.10,' in wire
    assert json.loads(wire)["ts_ms"] == 1_700_000_000_123


def test_wire_round_trips_to_an_equal_transaction() -> None:
    original = tx(amount=Decimal("1234.5"))
    again = Transaction.model_validate_json(original.to_wire())
    assert again == original
    assert again.amount == Decimal("1234.50")
    assert str(again.amount) == "1234.50"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_last4", "12345"),
        ("amount", Decimal("-1")),
        ("state", "Sao Paulo"),
        ("channel", "CASH"),
        ("amount", Decimal("1.001")),
        ("ts_ms", 0),
    ],
)
def test_invalid_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        tx(**{field: value})


def test_epoch_millis_round_trip_is_utc_aware() -> None:
    moment = datetime(2026, 11, 29, 23, 30, 0, 250_000, tzinfo=timezone.utc)
    assert from_epoch_ms(to_epoch_ms(moment)) == moment
    with pytest.raises(ValueError, match="naive"):
        to_epoch_ms(datetime(2026, 1, 1))


def test_actions_are_ordered_for_escalation() -> None:
    assert Action.APPROVE.severity < Action.REVIEW.severity < Action.BLOCK.severity
