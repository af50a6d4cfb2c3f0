"""The data contract: what travels on each topic, as pydantic v2 models.

On the wire every message is JSON, keyed by account_id (README, "Bringing your own producers":
other keys work too). Amounts are JSON numbers with two decimals, read back as `Decimal`; event
time is `ts_ms`, epoch milliseconds UTC, because that is what Flink turns into an event-time
attribute without guessing a format or a zone. A transaction needs only its id, account, amount
and event time; every other field may be missing or null, and the rules and the score then treat
it as unknown. The original system's shape (`timestamp`, `merchant`, `category`) is read too
(domain/original.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from streamguard.domain.original import normalise

#: Bumped when a field is removed or changes meaning; adding an optional field keeps it.
SCHEMA_VERSION = 1

AmountBRL = Annotated[Decimal, Field(max_digits=14, decimal_places=2, ge=Decimal("0.00"))]
Last4 = Annotated[str, StringConstraints(pattern=r"^\d{4}$")]


class Channel(str, Enum):
    """How the money moved."""

    PIX = "PIX"
    CREDIT = "CREDIT"
    DEBIT = "DEBIT"
    BOLETO = "BOLETO"
    TED = "TED"


class PayeeKeyType(str, Enum):
    """The kind of PIX key the payee was addressed by (Banco Central's DICT key types)."""

    CPF = "cpf"
    CNPJ = "cnpj"
    EMAIL = "email"
    PHONE = "phone"
    RANDOM = "random"


class Action(str, Enum):
    """A decision's outcome. Order matters: a later decision may only move right."""

    APPROVE = "APPROVE"
    REVIEW = "REVIEW"
    BLOCK = "BLOCK"

    @property
    def severity(self) -> int:
        """0 for APPROVE up to 2 for BLOCK; escalation compares these."""
        return _ACTION_SEVERITY[self]


_ACTION_SEVERITY = {Action.APPROVE: 0, Action.REVIEW: 1, Action.BLOCK: 2}


def to_epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: StreamGuard only handles timezone-aware times")
    return int(moment.timestamp() * 1000)


def from_epoch_ms(ts_ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


class Transaction(_Message):
    """One payment attempt, as the generator (or a bank's core system) emits it.

    Required: transaction_id, account_id, amount and the event time (`ts_ms`, or the original's
    ISO-8601 `timestamp`: domain/original.py). Every other field may be missing or null,
    which means unknown: a PIX transfer from internet banking has no location, a boleto no card.
    """

    schema_version: int = SCHEMA_VERSION
    transaction_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=64)
    card_token: str | None = Field(default=None, min_length=1, max_length=64)
    card_last4: Last4 | None = None
    amount: AmountBRL
    currency: str | None = Field(default="BRL", pattern=r"^[A-Z]{3}$")
    channel: Channel | None = None
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64)
    merchant_name: str | None = Field(default=None, max_length=200)
    merchant_mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    payee_key_type: PayeeKeyType | None = Field(default=None, description="PIX only")
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    device_id: str | None = Field(default=None, max_length=64)
    ip_address: str | None = Field(default=None, max_length=45)
    ts_ms: int = Field(gt=0, description="event time, epoch millis UTC")

    @model_validator(mode="before")
    @classmethod
    def _original_shape(cls, data: object) -> object:
        """The original system's `timestamp`, `merchant` and `category`, when sent."""
        return normalise(data)

    @field_validator("amount")
    @classmethod
    def _two_places(cls, value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"))

    @property
    def event_time(self) -> datetime:
        """The event time as an aware UTC datetime."""
        return from_epoch_ms(self.ts_ms)

    def to_wire(self) -> bytes:
        """The JSON message, with the amount as an exact JSON number (never through a float)."""
        fields = self.model_dump(mode="json", exclude={"amount"})
        return (
            f'{{"amount":{self.amount:.2f},' + json.dumps(fields, separators=(",", ":"))[1:]
        ).encode()


class FraudAlert(_Message):
    """A rule's finding about one transaction, emitted by the Flink SQL rules job."""

    alert_id: str = Field(min_length=1, description="rule_id:transaction_id, deterministic")
    rule_id: str
    severity: str
    score_weight: int = Field(ge=0, le=100)
    transaction_id: str
    account_id: str
    amount: AmountBRL
    ts_ms: int = Field(description="event time of the transaction that fired the rule")
    evidence: dict[str, str] = Field(default_factory=dict)


class Decision(_Message):
    """The decision service's verdict on one transaction; `version` grows with each change."""

    transaction_id: str
    account_id: str
    action: Action
    score: int = Field(ge=0, le=100)
    reasons: list[str] = Field(default_factory=list)
    rule_ids: list[str] = Field(default_factory=list)
    version: int = Field(default=1, ge=1)
    decided_ms: int


class FraudLabel(_Message):
    """Ground truth for one generated transaction; the detectors never read it."""

    transaction_id: str
    account_id: str
    scenario: str = Field(description="'legit' or the fraud scenario's name")
    is_fraud: bool


#: The most labels one message of `transaction_labels` may carry (about 100 bytes each, so a
#: full batch stays far below Kafka's 1 MB message limit).
MAX_LABEL_BATCH = 5_000
_LABEL_BATCH = TypeAdapter(
    Annotated[list[FraudLabel], Field(min_length=1, max_length=MAX_LABEL_BATCH)]
)


def labels_from_json(payload: bytes) -> list[FraudLabel]:
    """The labels of one `transaction_labels` message: one label object, or a JSON array of
    1..MAX_LABEL_BATCH of them (the generator's batches). Raises ValidationError."""
    if payload.lstrip().startswith(b"["):
        return _LABEL_BATCH.validate_json(payload)
    return [FraudLabel.model_validate_json(payload)]
