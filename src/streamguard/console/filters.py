"""Turn an analyst's query strings into the store's filters, or say what is wrong. No I/O.

The pages and the API share this, so both refuse the same input with the same reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from streamguard.domain.cases import CASE_ACTIONS
from streamguard.domain.models import Action
from streamguard.domain.paging import CursorError, decode_cursor
from streamguard.kafka.browse import MAX_LIMIT as BROWSE_MAX
from streamguard.kafka.browse import BrowseRequest
from streamguard.store.cases import QUEUE_STATUSES, QueueFilter
from streamguard.store.console_reads import DecisionFilter


class FilterError(ValueError):
    """A query parameter that cannot be used (HTTP 422 with this message)."""


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def parse_time(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 time; a time without a zone is taken as UTC (the pages show UTC)."""
    text = _blank(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"{name}: {text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_cursor(value: str | None) -> tuple[datetime, str] | None:
    """The keyset of a cursor parameter."""
    text = _blank(value)
    if text is None:
        return None
    try:
        return decode_cursor(text)
    except CursorError as exc:
        raise FilterError(f"cursor: {exc}") from exc


def decision_filter(
    *,
    transaction_id: str | None = None,
    account_id: str | None = None,
    rule_id: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> DecisionFilter:
    """The decision search's filters."""
    wanted = _blank(action)
    if wanted is not None and wanted.upper() not in Action.__members__:
        raise FilterError(f"action must be one of {', '.join(Action.__members__)}, not {wanted!r}")
    start, end = parse_time("since", since), parse_time("until", until)
    if start and end and start >= end:
        raise FilterError("since must be before until")
    rule = _blank(rule_id)
    return DecisionFilter(
        transaction_id=_blank(transaction_id),
        account_id=_blank(account_id),
        rule_id=rule.upper() if rule else None,
        action=wanted.upper() if wanted else None,
        since=start,
        until=end,
    )


def queue_filter(
    *,
    action: str | None = None,
    status: str | None = None,
    rule_id: str | None = None,
    min_amount: str | None = None,
    min_age_min: str | None = None,
    now: datetime | None = None,
) -> QueueFilter:
    """The review queue's filters; `min_age_min` keeps cases opened at least that long ago."""
    kind = (_blank(action) or "REVIEW").upper()
    if kind not in CASE_ACTIONS:
        raise FilterError(f"action must be one of {', '.join(CASE_ACTIONS)}, not {kind!r}")
    state = (_blank(status) or "UNRESOLVED").upper()
    if state not in QUEUE_STATUSES:
        raise FilterError(f"status must be one of {', '.join(QUEUE_STATUSES)}, not {state!r}")
    amount = None
    if _blank(min_amount) is not None:
        try:
            amount = Decimal(str(_blank(min_amount)))
        except InvalidOperation as exc:
            raise FilterError(f"min_amount: {min_amount!r} is not a number") from exc
        if not amount.is_finite() or amount < 0:
            raise FilterError("min_amount must be a number of reais, zero or more")
    before = None
    if _blank(min_age_min) is not None:
        try:
            minutes = int(str(_blank(min_age_min)))
        except ValueError as exc:
            raise FilterError(f"min_age_min: {min_age_min!r} is not a whole number") from exc
        if minutes < 0:
            raise FilterError("min_age_min must be zero or more")
        before = (now or datetime.now(timezone.utc)) - timedelta(minutes=minutes)
    rule = _blank(rule_id)
    return QueueFilter(
        action=kind,
        status=state,
        rule_id=rule.upper() if rule else None,
        min_amount=amount,
        opened_before=before,
    )


def _whole(name: str, value: str | None, *, least: int = 0) -> int | None:
    text = _blank(value)
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError as exc:
        raise FilterError(f"{name}: {text!r} is not a whole number") from exc
    if number < least:
        raise FilterError(f"{name} must be {least} or more")
    return number


def browse_filter(
    *,
    topic: str | None,
    partition: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    since: str | None = None,
    key: str | None = None,
) -> BrowseRequest:
    """The message browser's request: a topic, and optionally a partition, a starting offset
    (needs the partition) or time, a key, and how many messages (1 to 200, default 20)."""
    name = _blank(topic)
    if name is None:
        raise FilterError("topic: choose a topic")
    count = _whole("limit", limit, least=1) or 20
    if count > BROWSE_MAX:
        raise FilterError(f"limit must be at most {BROWSE_MAX}")
    number = _whole("partition", partition)
    start = _whole("offset", offset)
    moment = parse_time("since", since)
    if start is not None and number is None:
        raise FilterError("offset needs a partition: offsets are per partition")
    if start is not None and moment is not None:
        raise FilterError("give an offset or a time to start from, not both")
    return BrowseRequest(name, number, count, start, moment, _blank(key))
