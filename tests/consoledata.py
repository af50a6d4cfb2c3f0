"""Ledger rows for the console's tests, written as the decision service would write them.

The transaction and its alert go in with plain INSERTs (the decision service's COPY path needs its
per-connection stage tables); the decision goes through the service's own repository
(`save_versions`, `apply_statuses`), so its history and the transaction's status are real.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

from streamguard.config import Settings
from streamguard.domain.models import Action
from streamguard.domain.policy import Verdict
from streamguard.domain.scoring import Reason
from streamguard.store import decisions
from streamguard.store.db import connect
from tests.factories import make_transaction

XSS = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Seeded:
    """What was written: ids to look for."""

    transaction_id: str
    account_id: str
    merchant_id: str
    device_id: str


def seed_decision(
    settings: Settings,
    *,
    action: Action = Action.REVIEW,
    merchant_name: str = "Loja Teste",
    amount: str = "5000.00",
    account_id: str | None = None,
) -> Seeded:
    """A stored transaction with a HIGH_AMOUNT alert and a decision of `action` on it."""
    suffix = uuid.uuid4().hex[:8]
    tx = make_transaction(
        account_id=account_id or f"ACC-{suffix}",
        merchant_id=f"M-{suffix}",
        device_id=f"dev-{suffix}",
        merchant_name=merchant_name,
        amount=Decimal(amount),
    )
    score = {Action.APPROVE: 20, Action.REVIEW: 45, Action.BLOCK: 80}[action]
    verdict = Verdict(
        action=action,
        score=score,
        reasons=(
            Reason("rule:HIGH_AMOUNT", 40, "rule HIGH_AMOUNT (HIGH): amount above R$ 3000"),
            Reason("thin_history", 5, "account has little history"),
        ),
        rule_ids=("HIGH_AMOUNT",),
        list_hits=(),
    )
    with connect(settings) as conn:
        conn.execute(
            "INSERT INTO transactions (transaction_id, account_id, card_token, card_last4,"
            " amount, channel, merchant_id, merchant_name, merchant_mcc, city, state, lat, lon,"
            " device_id, ip_address, event_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, now())",
            (
                tx.transaction_id,
                tx.account_id,
                tx.card_token,
                tx.card_last4,
                tx.amount,
                tx.channel.value,
                tx.merchant_id,
                tx.merchant_name,
                tx.merchant_mcc,
                tx.city,
                tx.state,
                tx.lat,
                tx.lon,
                tx.device_id,
                tx.ip_address,
            ),
        )
        conn.execute(
            "INSERT INTO fraud_alerts (alert_id, rule_id, severity, score_weight,"
            " transaction_id, account_id, amount, event_time, evidence)"
            " VALUES (%s, 'HIGH_AMOUNT', 'HIGH', 40, %s, %s, %s, now(), %s)",
            (
                f"HIGH_AMOUNT:{tx.transaction_id}",
                tx.transaction_id,
                tx.account_id,
                tx.amount,
                json.dumps({"amount": amount, "threshold": "3000"}),
            ),
        )
        decisions.save_versions(
            conn,
            [
                decisions.NewVersion(
                    tx.transaction_id,
                    tx.account_id,
                    verdict,
                    "alert",
                    None,
                    1_700_000_000_000,
                    tx.amount,
                )
            ],
        )
        decisions.apply_statuses(conn, {tx.transaction_id: verdict.status})
    return Seeded(tx.transaction_id, tx.account_id, tx.merchant_id, tx.device_id)


def add_user(settings: Settings, name: str, password: str) -> None:
    """An analyst, made as `streamguard console add-user` makes one."""
    from streamguard.store import console_users

    with connect(settings) as conn:
        console_users.set_user(conn, name, password)
