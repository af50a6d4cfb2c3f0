"""The generator's incidents against the real rules: one Flink replay of a generated batch.

Every incident of a scenario aimed at a Flink rule must trip that rule in the real SQL (not in
a Python copy of it). The replay runs with the machine's zone set to Tokyo and no rules' zone
configured: NIGHT_SPENDING's nights are São Paulo's by default, never the machine's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from streamguard.generate.delivery import MemorySink
from streamguard.generate.engine import Engine, GeneratorConfig
from streamguard.generate.modes import run_batch
from tests.stackfixture import with_classpath

pytestmark = pytest.mark.integration

#: 2025-06-15T15:06:40Z; the batch spans about 32 hours, so it holds nights and days.
START_MS = 1_750_000_000_000
COUNT = 30_000
#: Then the bench's short card tests (3 charges, cash-out 63-69 s after the first), two days
#: on: about 7 hours of traffic with 5% fraud, all of it card tests.
SHORT_START_MS = START_MS + 2 * 86_400_000
SHORT_COUNT = 6_000

#: Each scenario and the Flink rule built to catch it (the blocklist is the decision
#: service's, not a rule; tests/unit/test_generate_scenarios.py covers it).
TARGET = {
    "high_amount": "HIGH_AMOUNT",
    "velocity_burst": "HIGH_VELOCITY",
    "card_testing": "CARD_TESTING",
    "impossible_travel": "IMPOSSIBLE_TRAVEL",
    "night_spending": "NIGHT_SPENDING",
    "short_card_testing": "CARD_TESTING",
}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, set[tuple[str, str]]]:
    """The batch's incidents ({scenario: {account: tx ids}}) and the (rule, tx) alerts."""
    folder = tmp_path_factory.mktemp("incidents")
    source, output = folder / "batch.jsonl", folder / "alerts.jsonl"
    sink, short = MemorySink(), MemorySink()
    engine = Engine(GeneratorConfig(accounts=2000, fraud_rate=0.05), seed=5)
    run_batch(engine, sink, count=COUNT, start_ms=START_MS)
    config = GeneratorConfig(
        accounts=2000, fraud_rate=0.05, mix={"card_testing": 1}, short_card_tests=True
    )
    run_batch(Engine(config, seed=6), short, count=SHORT_COUNT, start_ms=SHORT_START_MS)
    incidents: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for prefix, labels in (("", sink.labels), ("short_", short.labels)):
        for label in labels:
            truth = json.loads(label)
            scenario = prefix + truth["scenario"]
            incidents[scenario][truth["account_id"]].add(truth["transaction_id"])
    source.write_text("\n".join(sink.values + short.values) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env.update(
        {
            "TZ": "Asia/Tokyo",  # 12 hours from São Paulo: night there is day here
            "STREAMGUARD_STATE_DIR": str(with_classpath(folder / "state")),
            "STREAMGUARD_IDLE_TIMEOUT_S": "1",
            "STREAMGUARD_FLINK_HEAP_MB": "512",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamguard.cli.main", "rules", "replay", str(source)]
        + ["-o", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    alerts = [json.loads(line) for line in output.read_text().splitlines()]
    return incidents, {(a["rule_id"], a["transaction_id"]) for a in alerts}


@pytest.mark.parametrize("scenario", sorted(TARGET))
def test_every_incident_trips_its_rule_in_flink(replayed, scenario: str) -> None:
    incidents, fired = replayed
    rule = TARGET[scenario]
    hit = {tx_id for rule_id, tx_id in fired if rule_id == rule}
    accounts = incidents[scenario]
    assert len(accounts) >= 20, f"too few {scenario} incidents to mean anything"
    missed = sorted(account for account, ids in accounts.items() if not ids & hit)
    assert missed == [], f"{len(missed)} of {len(accounts)} {scenario} incidents missed by {rule}"


def test_short_card_tests_are_no_velocity_burst_in_flink(replayed) -> None:
    # three charges and the cash-out span more than 60 s: HIGH_VELOCITY stays quiet
    incidents, fired = replayed
    short = {tx_id for ids in incidents["short_card_testing"].values() for tx_id in ids}
    assert not {tx_id for rule_id, tx_id in fired if rule_id == "HIGH_VELOCITY"} & short
