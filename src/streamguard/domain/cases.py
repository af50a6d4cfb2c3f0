"""Cases: an analyst's work on a REVIEW (or BLOCK) decision. Pure rules, no I/O.

A case is open from the moment its decision exists; an analyst claims it, then resolves it once
with a resolution and a note. Only the analyst holding a claim may resolve it; resolving an open
case claims it in the same action (the store calls check_claim for both).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Resolution(str, Enum):
    """What the analyst found."""

    CONFIRMED_FRAUD = "CONFIRMED_FRAUD"
    FALSE_POSITIVE = "FALSE_POSITIVE"
    LEGITIMATE = "LEGITIMATE"


class CaseStatus(str, Enum):
    """Where a case stands; OPEN has no row in `cases` yet."""

    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    RESOLVED = "RESOLVED"


#: Only these decisions are cases.
CASE_ACTIONS = ("REVIEW", "BLOCK")
MAX_NOTE_LENGTH = 4000


class CaseError(ValueError):
    """The case cannot take this action now (HTTP 409): claimed by another, or resolved."""


class NoCaseError(LookupError):
    """No REVIEW or BLOCK decision has this transaction id (HTTP 404)."""


@dataclass(frozen=True)
class CaseState:
    """The parts of a case that decide what may happen to it."""

    transaction_id: str
    action: str
    status: CaseStatus
    claimed_by: str | None = None


def check_claim(case: CaseState, user: str) -> bool:
    """May `user` claim it? True if it is a new claim, False if they hold it already."""
    if case.status is CaseStatus.RESOLVED:
        raise CaseError(f"case {case.transaction_id} is already resolved")
    if case.status is CaseStatus.CLAIMED:
        if case.claimed_by != user:
            raise CaseError(f"case {case.transaction_id} is claimed by {case.claimed_by}")
        return False
    return True


def check_note(note: str) -> None:
    """A resolution's note must fit its column (ValueError otherwise)."""
    if len(note) > MAX_NOTE_LENGTH:
        raise ValueError(f"the note may have at most {MAX_NOTE_LENGTH} characters")
