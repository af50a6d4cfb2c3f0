"""A backtest as asked for: the period and the candidate's overrides, parsed and checked.

Shared by the CLI and the console, so both refuse the same input with the same reason before
anything runs. No I/O and no Flink: the overrides are checked against the rule files
(`run.catalogs`, which plans on the engine only a candidate folder, never asked for here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from streamguard.config import Settings
from streamguard.rules.catalog import RuleError

#: The longest period the console runs (a run is a Flink job on the console's machine).
MAX_CONSOLE_SPAN = timedelta(days=31)
#: The most overrides one request may carry (the catalog has a handful of parameters).
MAX_OVERRIDES = 50


class RequestError(ValueError):
    """A backtest request that cannot run: the reason is for the person who asked."""


@dataclass(frozen=True)
class BacktestRequest:
    """A checked request: the period [start, end) and the candidate's overrides."""

    start: datetime
    end: datetime
    overrides: dict[str, str]


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise RequestError(f"{text!r} is not an ISO-8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_sets(sets: Iterable[str]) -> dict[str, str]:
    """`RULE.param=value` pairs as overrides (the value is checked by the catalog)."""
    overrides = {}
    for item in sets:
        key, sep, value = item.partition("=")
        rule, dot, param = key.strip().partition(".")
        if not sep or not dot or not rule or not param or not value.strip():
            raise RequestError(f"{item!r} is not RULE.param=value")
        overrides[key.strip()] = value.strip()
    return overrides


def parse_lines(text: str) -> dict[str, str]:
    """Overrides written one `RULE.param=value` a line; blank lines are skipped."""
    return parse_sets(line for line in text.splitlines() if line.strip())


def checked(
    settings: Settings,
    start: datetime,
    end: datetime,
    overrides: dict[str, str],
    *,
    max_span: timedelta | None = MAX_CONSOLE_SPAN,
) -> BacktestRequest:
    """The request, if it can run: a period in order (at most `max_span`), and overrides that
    name known parameters with values the rules accept."""
    from streamguard.backtest.run import Period, catalogs

    try:
        Period(start, end)
    except ValueError as exc:
        raise RequestError(str(exc).replace("--to", "to").replace("--from", "from")) from exc
    if max_span is not None and end - start > max_span:
        raise RequestError(f"the period is longer than {max_span.days} days")
    if not overrides:
        raise RequestError("give the candidate at least one override, RULE.param=value")
    if len(overrides) > MAX_OVERRIDES:
        raise RequestError(f"at most {MAX_OVERRIDES} overrides")
    try:
        catalogs(settings, None, overrides)
    except RuleError as exc:
        raise RequestError(str(exc)) from exc
    return BacktestRequest(start, end, dict(overrides))
