"""How things look, decided once in Python: the templates only place these values."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

ACTION_CLASS = {
    "APPROVE": "ok",
    "APPROVED": "ok",
    "REVIEW": "warn",
    "BLOCK": "bad",
    "BLOCKED": "bad",
}
STATUS_LABEL = {"OPEN": "open", "CLAIMED": "claimed", "RESOLVED": "resolved"}
RESOLUTION_LABEL = {
    "CONFIRMED_FRAUD": "confirmed fraud",
    "FALSE_POSITIVE": "false positive",
    "LEGITIMATE": "legitimate",
}


def action_class(action: str | None) -> str:
    """The CSS class of an action or a transaction status."""
    return ACTION_CLASS.get(action or "", "none")


def money(amount: Decimal | None) -> str:
    """R$ 1.234,56: Brazilian grouping, two decimals; an em dash when unknown."""
    if amount is None:
        return "—"
    text = f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"R$ {text}"


def when(moment: datetime | None) -> str:
    """An aware time in UTC to the second; an em dash when unknown."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def known(value: object) -> str:
    """A transaction's optional field as shown: an em dash when the producer did not send it."""
    return "—" if value is None or value == "" else str(value)


def percent(share: float | None) -> str:
    """A share as a percentage with one decimal; an em dash when nothing was measured."""
    return "—" if share is None else f"{100 * share:.1f}%"


def weight(points: int) -> str:
    """A reason's weight with its sign."""
    return f"{points:+d}"


def _figure(value: object, digits: int = 1) -> str:
    if value is None:
        return "…"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def overview(figures: dict[str, object]) -> dict[str, object]:
    """The overview's figures as display strings, for the page and for its live updates alike."""
    return {
        "tx_per_s": _figure(figures.get("tx_per_s")),
        "alerts_per_s": _figure(figures.get("alerts_per_s")),
        "flagged_pct": _figure(figures.get("flagged_pct"), 2),
        "latency_p50_ms": _figure(figures.get("latency_p50_ms"), 0),
        "latency_p99_ms": _figure(figures.get("latency_p99_ms"), 0),
        "open_cases": _figure(figures.get("open_cases")),
        "inserted_transactions": _figure(figures.get("inserted_transactions")),
        "decisions_by_action_15m": sorted(
            (str(k), _figure(v))
            for k, v in dict(figures.get("decisions_by_action_15m") or {}).items()  # type: ignore[call-overload]
        ),
        "alerts_by_rule_1m": sorted(
            (str(k), _figure(v))
            for k, v in dict(figures.get("alerts_by_rule_1m") or {}).items()  # type: ignore[call-overload]
        ),
        "newest_alerts": [
            [a["rule_id"], a["transaction_id"], a["account_id"], money(Decimal(a["amount"]))]
            for a in figures.get("newest_alerts") or []  # type: ignore[attr-defined]
        ],
    }
