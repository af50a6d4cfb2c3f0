"""The API's shapes of a backtest: the request, a run, and its result (`backtest.run`'s dict).

The run page renders the same stored result, so what the API documents is what the page shows.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamguard.domain.models import Action


class BacktestIn(BaseModel):
    """A backtest to run: the period [from, to) and the candidate's parameter overrides."""

    model_config = ConfigDict(populate_by_name=True, coerce_numbers_to_str=True)

    from_: datetime = Field(alias="from", description="start of the period (no offset: UTC)")
    to: datetime = Field(description="end of the period, excluded (no offset: UTC)")
    overrides: dict[str, str] = Field(
        description="RULE.param -> value", examples=[{"HIGH_AMOUNT.threshold_brl": "5000.00"}]
    )

    @field_validator("from_", "to")
    @classmethod
    def _utc_when_naive(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class QualityOut(BaseModel):
    """Counts against the known truth and the ratios (null when undefined)."""

    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float | None
    recall: float | None
    f1: float | None


class CatalogQualityOut(BaseModel):
    """The catalog's cases as a whole, and each rule's alerts."""

    overall: QualityOut
    per_rule: dict[str, QualityOut]


class CatalogSummaryOut(BaseModel):
    """One catalog over the period."""

    alerts_per_rule: dict[str, int]
    actions: dict[Action, int]
    quality: CatalogQualityOut
    cases_per_day: dict[str, int] = Field(description="local date -> REVIEW and BLOCK cases")
    cases: dict[str, Action] = Field(description="transaction id -> REVIEW or BLOCK")


class ChangeOut(BaseModel):
    """A transaction whose verdict or alerts differ between the catalogs."""

    transaction_id: str
    event_time: datetime
    live_action: Action
    candidate_action: Action
    added_rules: list[str]
    removed_rules: list[str]


class PeriodOut(BaseModel):
    """The period [from, to)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime


class SecondsOut(BaseModel):
    """Wall time of the replay (the Flink job) and of the whole run."""

    replay: float
    total: float


class BacktestResultOut(BaseModel):
    """The live catalog and the candidate compared over the period."""

    period: PeriodOut
    transactions: int
    known_fraud: int
    catalogs: dict[Literal["live", "candidate"], CatalogSummaryOut]
    changes: list[ChangeOut]
    seconds: SecondsOut
    replay_tx_per_s: int | None


class BacktestRunOut(BaseModel):
    """A stored run: who asked, for what, its state, and its result once done."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    requested_by: str
    requested_at: datetime
    period_from: datetime
    period_to: datetime
    overrides: dict[str, str]
    status: Literal["queued", "running", "done", "failed"]
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    changed: int | None = Field(description="how many verdicts changed (once done)")
    result: BacktestResultOut | None
