"""A small stored history for the console's backtests, through the whole running stack.

Transactions are produced to Kafka at noon (São Paulo) of a day `days_back` days ago, one
account each, with labels; the stack's decision service stores them (and the live rules alert
on them), so the backtest reads them from the topic and the ledger as it would in production.
Each caller picks its own day, which no other test writes to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from streamguard.domain.models import FraudLabel
from streamguard.kafka import topics
from tests.factories import noon_before
from tests.integration.decideproc import make_tx, producer, wait_for
from tests.stackfixture import StackHandle

#: amount -> label. HIGH_AMOUNT fires above R$ 3,000 live; the candidate raises it to R$ 5,000.
AMOUNTS: dict[str, bool] = {"2000.00": False, "3500.00": True, "4200.00": False, "6000.00": True}
#: What the candidate no longer alerts on: above 3,000 and not above 5,000.
BETWEEN = ("3500.00", "4200.00")
CANDIDATE = "HIGH_AMOUNT.threshold_brl=5000.00"


@dataclass(frozen=True)
class History:
    """The stored transactions by amount, and the period that holds them."""

    by_amount: dict[str, str]
    start: datetime
    end: datetime

    @property
    def changed(self) -> set[str]:
        """The transactions whose verdict the candidate changes."""
        return {self.by_amount[amount] for amount in BETWEEN}


def store_history(handle: StackHandle, days_back: int) -> History:
    """Produce the history and wait until the decision service stored it with its labels."""
    run = uuid.uuid4().hex[:8]
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    noon_ms = noon_before(now_ms) - days_back * 86_400_000
    txs = {amount: make_tx(f"BTW-{run}-{amount}", amount, ts_ms=noon_ms) for amount in AMOUNTS}
    prod = producer(handle)
    for tx in txs.values():
        prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
    for amount, is_fraud in AMOUNTS.items():
        label = FraudLabel(
            transaction_id=txs[amount].transaction_id,
            account_id=txs[amount].account_id,
            scenario="high_amount" if is_fraud else "legit",
            is_fraud=is_fraud,
        )
        prod.produce(topics.LABELS, key=label.account_id, value=label.model_dump_json())
    assert prod.flush(30) == 0
    ids = [tx.transaction_id for tx in txs.values()]
    with psycopg.connect(handle.settings.db_url) as conn:
        stored = wait_for(
            conn,
            "SELECT (SELECT count(*) FROM transactions WHERE transaction_id = ANY(%s)),"
            " (SELECT count(*) FROM transaction_labels WHERE transaction_id = ANY(%s)),"
            " (SELECT count(*) FROM decisions WHERE transaction_id = ANY(%s))",
            (ids, ids, ids),
            lambda rows: rows[0] == (len(ids), len(ids), 3),
            timeout_s=90,
        )
    assert stored[0] == (len(ids), len(ids), 3), stored
    noon = datetime.fromtimestamp(noon_ms / 1000, tz=timezone.utc)
    return History(
        {amount: tx.transaction_id for amount, tx in txs.items()},
        noon - timedelta(minutes=1),
        noon + timedelta(minutes=1),
    )
