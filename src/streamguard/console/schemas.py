"""The API's shapes: the domain's enums, and response models over the store's plain values.

The pages render the same values, so what the API documents is what the pages show.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streamguard.domain.cases import MAX_NOTE_LENGTH, Resolution
from streamguard.domain.models import Action
from streamguard.store.console_reads import Alert, TransactionView


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DecisionOut(_Out):
    """A decision as the search lists it."""

    transaction_id: str
    account_id: str
    action: Action
    score: int
    rule_ids: list[str]
    list_hits: list[str]
    version: int
    first_decided_at: datetime
    decided_at: datetime
    amount: Decimal | None
    merchant_name: str | None
    event_time: datetime | None


class DecisionPage(BaseModel):
    """A page of the search; pass next_cursor back as `cursor` for the next one."""

    items: list[DecisionOut]
    next_cursor: str | None


class ReasonOut(_Out):
    """One weighted reason."""

    code: str
    weight: int
    text: str


class VersionOut(_Out):
    """One version of the decision (the audit trail)."""

    version: int
    action: Action
    score: int
    reasons: list[ReasonOut]
    rule_ids: list[str]
    list_hits: list[str]
    trigger: str
    decided_at: datetime
    published_at: datetime | None


# The store's dataclasses serve as they are where the API shows the same shape.
AlertOut = Alert
TransactionOut = TransactionView


class ListEntryOut(_Out):
    """An entry on a block or allow list."""

    list_type: str
    entity_type: str
    entity_value: str
    reason: str
    added_by: str
    added_at: datetime | None


class CaseOut(_Out):
    """A case of the review queue."""

    transaction_id: str
    account_id: str
    action: Action
    score: int
    rule_ids: list[str]
    opened_at: datetime
    amount: Decimal | None
    merchant_name: str | None
    status: Literal["OPEN", "CLAIMED", "RESOLVED"]
    claimed_by: str | None
    resolution: Resolution | None
    resolved_by: str | None


class DecisionFileOut(_Out):
    """Everything known about one transaction's decision."""

    transaction_id: str
    transaction: TransactionOut | None
    decision: DecisionOut | None
    reasons: list[ReasonOut]
    alerts: list[AlertOut]
    history: list[VersionOut]
    recent: list[TransactionOut]
    list_matches: list[ListEntryOut]
    case: CaseOut | None = None


class CasePage(BaseModel):
    """A page of the queue, oldest first, with the counts by status."""

    items: list[CaseOut]
    next_cursor: str | None
    counts: dict[str, int]


class ResolveIn(BaseModel):
    """A resolution, optionally putting the account, merchant or device on a list."""

    model_config = ConfigDict(extra="forbid")

    resolution: Resolution
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)
    list_type: Literal["BLOCK", "ALLOW"] = "BLOCK"
    list_entities: list[Literal["ACCOUNT", "MERCHANT", "DEVICE"]] = Field(default_factory=list)


class ResolveOut(BaseModel):
    """What a resolution did."""

    case: CaseOut
    listed: list[str]


class ClaimOut(BaseModel):
    """The claimed case; `new` is False when the analyst held it already."""

    case: CaseOut
    new: bool


class ListEntryIn(BaseModel):
    """An entry to add (or whose reason to update)."""

    model_config = ConfigDict(extra="forbid")

    list_type: Literal["BLOCK", "ALLOW"]
    entity_type: Literal["ACCOUNT", "MERCHANT", "DEVICE"]
    value: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class ListChangeOut(BaseModel):
    """What a list change did."""

    changed: bool
