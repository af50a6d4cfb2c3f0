"""The CLI's read-only commands, run as a user would: `rules list` and `where` (no stack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streamguard.rules.catalog import load_rules


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`streamguard ARGS` with only the given STREAMGUARD_* settings, on a wide terminal."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "streamguard.cli.main", *args],
        env={**base, "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_list_shows_every_rule_with_its_configured_parameters() -> None:
    overrides = {"HIGH_AMOUNT.threshold_brl": "5000.00", "HIGH_VELOCITY.window_s": "30"}
    result = cli("rules", "list", STREAMGUARD_RULE_PARAMS=json.dumps(overrides))
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    rules = load_rules()
    assert set(rows) == {rule.rule_id for rule in rules}
    for rule in rules:
        assert rule.path.name in rows[rule.rule_id] and str(rule.score_weight) in rows[rule.rule_id]
    assert "threshold_brl=5000.00" in rows["HIGH_AMOUNT"]
    assert "min_count=4, window_s=30" in rows["HIGH_VELOCITY"]


def test_rules_list_refuses_a_broken_rule_folder(tmp_path: Path) -> None:
    (tmp_path / "001_nameless.sql").write_text("-- severity: HIGH\nSELECT 1\n")
    result = cli("rules", "list", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "error:" in result.stdout


def test_where_names_this_stacks_places_and_never_a_password(tmp_path: Path) -> None:
    result = cli(
        "where",
        STREAMGUARD_STATE_DIR=str(tmp_path),
        STREAMGUARD_FLINK_UI_PORT="18081",
        STREAMGUARD_KAFKA_PORT="19092",
        STREAMGUARD_PG_PORT="15432",
        STREAMGUARD_PG_PASSWORD="not-to-be-printed",
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # the terminal may wrap lines
    assert "http://localhost:18081" in text
    assert "localhost:19092" in text
    assert "-p 15432" in text
    assert f"{tmp_path}/logs/" in text
    assert "not-to-be-printed" not in text

    external = cli(
        "where",
        STREAMGUARD_DATABASE_URL="postgresql://u:s3cret@db.example:5432/sg",
        STREAMGUARD_APP_PG_PASSWORD="app-s3cret",
    )
    assert external.returncode == 0, external.stderr
    assert "s3cret" not in external.stdout and "<STREAMGUARD_DATABASE_URL>" in external.stdout
