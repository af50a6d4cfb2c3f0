"""Test data: valid messages with sensible defaults, overridable field by field."""

from __future__ import annotations

import uuid
from decimal import Decimal

from streamguard.domain.models import Channel, Transaction


def make_transaction(**overrides: object) -> Transaction:
    """A valid Transaction with fixed defaults and a fresh transaction_id; override any field."""
    fields: dict[str, object] = dict(
        transaction_id=str(uuid.uuid4()),
        account_id="ACC000001",
        card_token="tok_1",
        card_last4="1234",
        amount=Decimal("120.50"),
        channel=Channel.PIX,
        merchant_id="M001",
        merchant_name="Magazine Luiza",
        merchant_mcc="5311",
        city="São Paulo",
        state="SP",
        lat=-23.55,
        lon=-46.63,
        device_id="dev-1",
        ip_address="189.1.2.3",
        ts_ms=1_700_000_000_123,
    )
    fields.update(overrides)
    return Transaction(**fields)  # type: ignore[arg-type]
