"""Test data: valid messages with sensible defaults, overridable field by field."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from streamguard.domain.models import Channel, Transaction
from streamguard.generate.clock import LOCAL_TZ


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


def noon_before(now_ms: int) -> int:
    """Noon in São Paulo on the latest day whose noon is at least an hour before `now_ms`, epoch
    ms: an event time that is day time whatever the hour a test runs (never NIGHT_SPENDING's
    night), and old enough to be late, which the stateless rules judge like any other."""
    local = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(LOCAL_TZ)
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon > local - timedelta(hours=1):
        noon = (noon - timedelta(days=1)).replace(hour=12)
    return int(noon.timestamp() * 1000)
