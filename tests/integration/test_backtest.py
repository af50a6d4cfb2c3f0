"""`streamguard backtest` on real Kafka, Flink and PostgreSQL: the diff of a threshold change,
a new rule's additions, the lists as they stood, and a bad candidate refused before a run.

The module stores one history through the real decision service: a transaction per account
at noon (São Paulo) on a day 30 days back, which no other test writes to, with labels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamguard.backtest.merchants import MerchantClock
from streamguard.domain.models import FraudLabel
from streamguard.domain.scoring import MerchantRisk
from streamguard.kafka import topics
from streamguard.rules.catalog import rules_dir
from streamguard.store import backtest_reads, lists
from tests.factories import noon_before
from tests.integration.decideproc import decision_service, make_tx, producer, wait_for
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration

#: amount -> label (None: no label, unknown truth). HIGH_AMOUNT fires above its threshold.
AMOUNTS: dict[str, bool | None] = {
    "2000.00": False,
    "3200.00": None,
    "3500.00": True,
    "4200.00": False,
    "5000.00": True,
    "6000.00": True,
}
#: Everything above 3,000 and not above 5,000: what raising the threshold takes away.
BETWEEN = {"3200.00", "3500.00", "4200.00", "5000.00"}


@dataclass(frozen=True)
class History:
    """The stored history: transaction ids by amount, the listed accounts' ids, the period."""

    handle: StackHandle
    by_amount: dict[str, str]
    listed_during: str  # a transaction whose account was blocked before it, in the period
    listed_after: str  # a transaction whose account was blocked after the period
    listed_later: str  # one whose account was blocked in the period, 30 s after it
    start: datetime
    end: datetime

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`streamguard backtest` over the period with `args`, against the stack."""
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "streamguard.cli.main",
                "backtest",
                "--from",
                self.start.isoformat(),
                "--to",
                self.end.isoformat(),
                *args,
            ],
            env=self.handle.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def result(self, *args: str) -> dict[str, Any]:
        """The JSON result of a backtest that must succeed."""
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    @property
    def ours(self) -> set[str]:
        """Every transaction id of this history."""
        return {*self.by_amount.values(), self.listed_during, self.listed_after, self.listed_later}


@pytest.fixture(scope="module")
def history(infra: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    run = uuid.uuid4().hex[:8]
    noon_ms = noon_before(int(datetime.now(timezone.utc).timestamp() * 1000)) - 30 * 86_400_000
    noon = datetime.fromtimestamp(noon_ms / 1000, tz=timezone.utc)
    merchant = f"M-BT-{run}"  # one merchant for the amounts: its counters as they stood
    txs = {
        amount: make_tx(f"BT-{run}-{amount}", amount, ts_ms=noon_ms, merchant_id=merchant)
        for amount in AMOUNTS
    }
    during = make_tx(f"BT-{run}-during", "100.00", ts_ms=noon_ms)
    after = make_tx(f"BT-{run}-after", "100.00", ts_ms=noon_ms)
    later = make_tx(f"BT-{run}-later", "100.00", ts_ms=noon_ms)
    log = tmp_path_factory.mktemp("backtest") / "decide.log"
    with decision_service(infra, log), psycopg.connect(infra.settings.db_url) as conn:
        prod = producer(infra)
        for tx in (*txs.values(), during, after, later):
            prod.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
        for amount, is_fraud in AMOUNTS.items():
            if is_fraud is not None:
                label = FraudLabel(
                    transaction_id=txs[amount].transaction_id,
                    account_id=txs[amount].account_id,
                    scenario="high_amount" if is_fraud else "legit",
                    is_fraud=is_fraud,
                )
                prod.produce(topics.LABELS, key=label.account_id, value=label.model_dump_json())
        assert prod.flush(30) == 0
        ids = [tx.transaction_id for tx in (*txs.values(), during, after, later)]
        stored = wait_for(
            conn,
            "SELECT (SELECT count(*) FROM transactions WHERE transaction_id = ANY(%s)),"
            " (SELECT count(*) FROM transaction_labels WHERE transaction_id = ANY(%s))",
            (ids, ids),
            lambda rows: rows[0] == (len(ids), 5),
        )
        assert stored[0] == (len(ids), 5)
        # The audit trail as it stood: one account blocked a minute before its transaction and
        # one 30 s after it, both in the period (written as the trail records them), and one
        # blocked now, long after the period.
        for tx, at in (
            (during, noon - timedelta(minutes=1)),
            (later, noon + timedelta(seconds=30)),
        ):
            conn.execute(
                "INSERT INTO list_changes (change, list_type, entity_type, entity_value, reason,"
                " changed_at) VALUES ('ADD', 'BLOCK', 'ACCOUNT', %s, 'mule', %s)",
                (tx.account_id, at),
            )
        lists.add(conn, "BLOCK", "ACCOUNT", after.account_id, "reported later")
        conn.commit()
    yield History(
        infra,
        {amount: tx.transaction_id for amount, tx in txs.items()},
        during.transaction_id,
        after.transaction_id,
        later.transaction_id,
        noon - timedelta(minutes=1),
        noon + timedelta(minutes=1),
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the `raised` run writes its HTML report."""
    return tmp_path_factory.mktemp("report") / "raised.html"


@pytest.fixture(scope="module")
def raised(history: History, report: Path) -> dict[str, Any]:
    """The backtest of HIGH_AMOUNT's threshold raised from R$ 3,000 to R$ 5,000."""
    return history.result("--set", "HIGH_AMOUNT.threshold_brl=5000.00", "--html", str(report))


def test_raising_high_amounts_threshold_removes_exactly_the_alerts_between(
    history: History, raised: dict[str, Any]
) -> None:
    assert raised["transactions"] == len(history.ours)
    assert raised["history"] == "topic"  # the topic still holds the period
    changes = {c["transaction_id"]: c for c in raised["changes"]}
    between = {history.by_amount[a] for a in BETWEEN}
    assert set(changes) == between
    for tx in between:
        assert changes[tx]["removed_rules"] == ["HIGH_AMOUNT"]
        assert changes[tx]["added_rules"] == []
        assert changes[tx]["live_action"] in ("REVIEW", "BLOCK")
        assert changes[tx]["candidate_action"] == "APPROVE"
    live, candidate = raised["catalogs"]["live"], raised["catalogs"]["candidate"]
    assert live["alerts_per_rule"] == {"HIGH_AMOUNT": 5}
    assert candidate["alerts_per_rule"] == {"HIGH_AMOUNT": 1}
    # judged live alerts: 3,500 (fraud), 4,200 (legit), 5,000 and 6,000 (fraud); 3,200 unknown
    assert live["quality"]["per_rule"]["HIGH_AMOUNT"] == {
        "true_positives": 3,
        "false_positives": 1,
        "false_negatives": 0,
        "precision": 0.75,
        "recall": 1.0,
        "f1": 0.8571,
    }
    assert candidate["quality"]["per_rule"]["HIGH_AMOUNT"]["precision"] == 1.0
    assert candidate["quality"]["per_rule"]["HIGH_AMOUNT"]["recall"] == 0.3333
    assert raised["known_fraud"] == 3
    # the review load moves with the cases: four fewer on the day
    (day,) = {*live["cases_per_day"], *candidate["cases_per_day"]}
    assert live["cases_per_day"][day] - candidate["cases_per_day"].get(day, 0) == 4


def test_the_html_report_shows_the_same_run_with_no_external_request(
    history: History, raised: dict[str, Any], report: Path
) -> None:
    html = report.read_text(encoding="utf-8")
    assert raised["period"]["from"] in html
    # HIGH_AMOUNT's row: live 5 alerts at 75 % / 100 % / 85.7 %, candidate 1 at 100 % / 33.3 %
    row = html.split("<td>HIGH_AMOUNT</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>5</td><td>75.0%</td><td>100.0%</td><td>85.7%</td><td>1</td><td>100.0%</td>" in row
    assert f"Changed verdicts (all {len(raised['changes'])})" in html
    for amount in BETWEEN:
        assert f"<td>{history.by_amount[amount]}</td>" in html
    assert html.count("<svg") == 2
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_lists_count_as_they_stood_at_each_transactions_time(
    history: History, raised: dict[str, Any]
) -> None:
    for name in ("live", "candidate"):
        cases = raised["catalogs"][name]["cases"]
        assert cases.get(history.listed_during) == "BLOCK"  # blocked a minute before it
        assert history.listed_after not in cases  # blocked after the period
        assert history.listed_later not in cases  # blocked in the period, but after it


def test_a_merchants_counters_are_counted_as_they_stood_not_as_they_are_today(
    history: History,
) -> None:
    ids = sorted(history.by_amount.values())  # one merchant; equal event times: by id
    with psycopg.connect(history.handle.settings.db_url) as conn:
        (merchant,) = {
            row[0]
            for row in conn.execute(
                "SELECT merchant_id FROM transactions WHERE transaction_id = ANY(%s)", (ids,)
            )
        }
        # Today the merchant looks risky: 1,000 transactions, 900 flagged.
        conn.execute(
            "UPDATE merchant_stats SET tx_count = 1000, flagged_count = 900 WHERE merchant_id = %s",
            (merchant,),
        )
        conn.commit()
        rank = backtest_reads.merchant_rank_in(conn, history.start, history.end, ids)
        before = backtest_reads.merchant_counts_before(conn, history.start, [merchant])
    assert rank == {tx: (merchant, place) for place, tx in enumerate(ids, start=1)}
    assert before == {}  # nothing of the merchant's before the period
    clock = MerchantClock(before, rank)
    clock.flag(merchant, history.start)
    assert clock.at(ids[2], history.end) == (merchant, MerchantRisk(3, 1))


def test_a_new_rule_file_shows_its_alerts_and_only_them_as_additions(
    history: History, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    (folder / "007_round_sums.sql").write_text(
        "-- id: ROUND_SUMS\n-- severity: LOW\n-- weight: 10\n"
        "-- description: round sums of two or four thousand (a test rule)\n"
        "SELECT transaction_id, account_id, amount, ts_ms, MAP['amount_brl',"
        " CAST(amount AS STRING)] AS evidence\nFROM transactions\n"
        "WHERE amount = 2000.00 OR amount = 4200.00\n",
        encoding="utf-8",
    )
    result = history.result("--rules", str(folder))
    changes = {c["transaction_id"]: c for c in result["changes"]}
    assert set(changes) == {history.by_amount["2000.00"], history.by_amount["4200.00"]}
    assert all(c["added_rules"] == ["ROUND_SUMS"] for c in changes.values())
    assert all(c["removed_rules"] == [] for c in changes.values())
    live, candidate = result["catalogs"]["live"], result["catalogs"]["candidate"]
    assert candidate["alerts_per_rule"] == {**live["alerts_per_rule"], "ROUND_SUMS": 2}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--set", "HIGH_AMOUNT.nope=1"), "HIGH_AMOUNT.nope"),
        (("--set", "HIGH_AMOUNT.threshold_brl=1;DROP TABLE x"), "threshold_brl"),
    ],
)
def test_a_bad_parameter_fails_before_anything_runs(
    history: History, args: tuple[str, ...], named: str
) -> None:
    done = history.run(*args)
    assert done.returncode == 1
    assert named in done.stdout + done.stderr
    assert "replayed" not in done.stdout


def test_a_broken_rule_file_fails_before_anything_runs_naming_its_file_and_line(
    history: History, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    (folder / "007_broken.sql").write_text(
        "-- id: BROKEN\n-- severity: LOW\n-- weight: 10\n-- description: a typo on line 7\n"
        "\n"
        "SELECT transaction_id, account_id, amount, ts_ms, MAP['a', 'b'] AS evidence\n"
        "FROMM transactions\n",
        encoding="utf-8",
    )
    done = history.run("--rules", str(folder))
    assert done.returncode == 1, done.stdout[-2000:]
    assert "007_broken.sql, line 7" in done.stdout, done.stdout[-2000:]
    assert "replayed" not in done.stdout


def test_once_the_topics_retention_has_passed_the_period_the_ledger_stands_in(
    history: History, raised: dict[str, Any]
) -> None:
    """Last in the module: it deletes the topic's records, as retention would."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": history.handle.settings.bootstrap_servers})
    partitions = admin.list_topics(topics.TRANSACTIONS, timeout=10).topics[topics.TRANSACTIONS]
    deleted = admin.delete_records(
        [TopicPartition(topics.TRANSACTIONS, p, -1) for p in partitions.partitions]
    )
    for future in deleted.values():
        future.result(30)
    result = history.result("--set", "HIGH_AMOUNT.threshold_brl=5000.00")
    assert result["history"] == "ledger"
    assert result["transactions"] == raised["transactions"]
    assert result["changes"] == raised["changes"]
    assert result["catalogs"] == raised["catalogs"]
