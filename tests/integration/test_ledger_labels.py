"""Ground-truth labels are stored once each, by the decision service's own role: new ones by a
COPY straight into the table, and a batch that repeats some of them (a replay) by the stage
table, in the same transaction as what the batch stored before."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from streamguard.store import ledger
from streamguard.store.ledger import LabelRow
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


def test_a_batch_that_repeats_labels_stores_the_new_ones_and_keeps_the_old(
    infra: StackHandle,
) -> None:
    run = uuid.uuid4().hex[:12]
    first: list[LabelRow] = [(f"{run}-{i}", "ACC-1", "legit", False) for i in range(5)]
    # two repeats (with another scenario, which must not overwrite) and three new ones, one of
    # them with text that COPY has to escape
    again: list[LabelRow] = [(tx_id, "ACC-1", "card_testing", True) for tx_id, *_ in first[3:]]
    again += [(f"{run}-{i}", "ACC-2", "velocity\tburst\\x", True) for i in range(5, 8)]
    with psycopg.connect(infra.settings.app_db_url) as app, app.transaction():
        ledger.save_labels(app, first)
        ledger.save_labels(app, again)
        ledger.save_labels(app, again)  # the whole batch again: nothing new
    with psycopg.connect(infra.settings.db_url) as conn:
        stored = conn.execute(
            "SELECT transaction_id, account_id, scenario, is_fraud FROM transaction_labels"
            " WHERE transaction_id LIKE %s ORDER BY transaction_id",
            (f"{run}-%",),
        ).fetchall()
    assert stored == sorted(first + again[2:]), stored
