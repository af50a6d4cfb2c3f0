"""The rule catalog without a JVM: parsing, parameters, the late-event convention, checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamguard.config import Settings
from streamguard.rules.catalog import (
    RuleError,
    check_overrides,
    load_rules,
    load_views,
    parse_rule,
    parse_view,
)
from streamguard.rules.engine import (
    STATE_FORMAT,
    checkpoint_root,
    drop_unreadable_checkpoints,
    latest_checkpoint,
)
from streamguard.rules.runner import prune_checkpoints

RULE_IDS = [
    "HIGH_AMOUNT",
    "HIGH_VELOCITY",
    "HIGH_VELOCITY_AMOUNT",
    "NIGHT_SPENDING",
    "CARD_TESTING",
    "IMPOSSIBLE_TRAVEL",
]


def write_rule(folder: Path, name: str, header: str, body: str = "SELECT 1") -> Path:
    path = folder / name
    path.write_text(f"{header}\n{body}\n", encoding="utf-8")
    return path


HEADER = "-- id: X_RULE\n-- severity: LOW\n-- weight: 5\n-- description: d\n-- param limit: 10"


def test_catalog_holds_the_six_rules_in_file_order() -> None:
    assert [rule.rule_id for rule in load_rules()] == RULE_IDS


def test_every_rule_has_a_complete_header_and_says_why() -> None:
    for rule in load_rules():
        assert 0 <= rule.score_weight <= 100
        assert rule.description and "\n" not in rule.description
        assert rule.params, f"{rule.rule_id} has no configurable threshold"
        assert "-- Why:" in rule.path.read_text(encoding="utf-8")


def test_the_shared_view_takes_its_windows_from_the_rules() -> None:
    (history,) = load_views()
    assert history.name == "account_history"
    default = history.render(load_rules())
    assert "CAST(60 * 1000 AS BIGINT)) OVER w AS velocity_window" in default
    assert "CAST(300 * 1000 AS BIGINT)) OVER w AS spend_window" in default
    changed = history.render(load_rules(), {"HIGH_VELOCITY.window_s": "30"})
    assert "CAST(30 * 1000 AS BIGINT)) OVER w AS velocity_window" in changed
    assert history.create_sql(load_rules()).startswith("CREATE TEMPORARY VIEW account_history AS\n")
    with pytest.raises(RuleError, match="must be a number"):
        history.render(load_rules(), {"HIGH_VELOCITY.window_s": "60) OR (1"})


def test_a_view_must_name_itself_and_known_rule_parameters(tmp_path: Path) -> None:
    nameless = write_rule(tmp_path, "a.sql", "-- a view", "SELECT 1")
    with pytest.raises(RuleError, match="view: name"):
        parse_view(nameless)
    view = parse_view(write_rule(tmp_path, "b.sql", "-- view: v", "SELECT ${NO_RULE.window_s}"))
    with pytest.raises(RuleError, match="NO_RULE.window_s"):
        view.render(load_rules())


def test_alert_sql_builds_the_deterministic_alert_id() -> None:
    rule = next(r for r in load_rules() if r.rule_id == "CARD_TESTING")
    sql = rule.alert_sql()
    assert "CONCAT('CARD_TESTING:', r.transaction_id) AS alert_id" in sql
    assert "'CRITICAL' AS severity" in sql
    assert "${" not in sql
    assert rule.insert_sql("sink", {}).startswith("INSERT INTO sink\nSELECT CONCAT(")


def test_overrides_change_thresholds_without_touching_the_logic() -> None:
    rule = next(r for r in load_rules() if r.rule_id == "HIGH_VELOCITY")
    default, changed = rule.render(), rule.render({"HIGH_VELOCITY.min_count": "6"})
    assert "velocity_window.tx_count >= 4" in default
    assert "velocity_window.tx_count >= 6" in changed
    assert changed.replace(">= 6", ">= 4") == default
    night = next(r for r in load_rules() if r.rule_id == "NIGHT_SPENDING")
    assert "amount > 1500.00" in night.render({"NIGHT_SPENDING.min_amount_brl": " 1500.00 "})


@pytest.mark.parametrize("value", ["1; DROP TABLE x", "3000 OR TRUE", "", "NaN", "Infinity"])
def test_overrides_must_be_finite_numbers(value: str) -> None:
    rule = next(r for r in load_rules() if r.rule_id == "HIGH_AMOUNT")
    with pytest.raises(RuleError):
        rule.render({"HIGH_AMOUNT.threshold_brl": value})


def test_unknown_overrides_are_refused() -> None:
    rules = load_rules()
    check_overrides(rules, {"HIGH_AMOUNT.threshold_brl": "100"})
    with pytest.raises(RuleError, match="HIGH_AMOUNTT.threshold_brl"):
        check_overrides(rules, {"HIGH_AMOUNTT.threshold_brl": "100"})
    with pytest.raises(RuleError, match="HIGH_AMOUNT.limit"):
        check_overrides(rules, {"HIGH_AMOUNT.limit": "100"})


def test_parse_rule_reads_header_params_and_body(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "001_x.sql", HEADER, "SELECT a FROM t WHERE b > ${limit};")
    rule = parse_rule(path)
    assert (rule.rule_id, rule.severity, rule.score_weight) == ("X_RULE", "LOW", 5)
    assert rule.params == {"limit": "10"}
    assert rule.render() == "SELECT a FROM t WHERE b > 10"


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        ("-- id: X_RULE\n-- severity: LOW\n-- weight: 5", "SELECT 1", "description"),
        (HEADER.replace("X_RULE", "x-rule"), "SELECT 1", "UPPER_SNAKE_CASE"),
        (HEADER.replace("LOW", "SEVERE"), "SELECT 1", "severity"),
        (HEADER, "DELETE FROM t", "one SELECT"),
    ],
)
def test_malformed_rule_files_are_refused(
    tmp_path: Path, header: str, body: str, message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(write_rule(tmp_path, "001_x.sql", header, body))


def test_undeclared_placeholder_is_refused(tmp_path: Path) -> None:
    rule = parse_rule(write_rule(tmp_path, "001_x.sql", HEADER, "SELECT ${other}"))
    with pytest.raises(RuleError, match="other"):
        rule.render()


def test_rule_ids_must_be_unique(tmp_path: Path) -> None:
    write_rule(tmp_path, "001_a.sql", HEADER)
    write_rule(tmp_path, "002_b.sql", HEADER)
    with pytest.raises(RuleError, match="defined twice"):
        load_rules(tmp_path)


def _checkpoint(root: Path, job: str, n: int, mtime: float, complete: bool = True) -> Path:
    folder = root / "flink" / "checkpoints" / STATE_FORMAT / job / f"chk-{n}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "_metadata").write_bytes(b"meta")
        os.utime(folder / "_metadata", (mtime, mtime))
    os.utime(folder.parent, (mtime, mtime))
    return folder


def test_latest_checkpoint_is_the_newest_completed_one(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    assert latest_checkpoint(settings) is None
    _checkpoint(tmp_path, "job-old", 7, 1_000)
    newest = _checkpoint(tmp_path, "job-new", 2, 2_000)
    _checkpoint(tmp_path, "job-new", 3, 3_000, complete=False)  # still being written
    assert latest_checkpoint(settings) == newest


def test_checkpoints_of_an_older_state_layout_are_never_restored(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    assert drop_unreadable_checkpoints(settings) == []
    # an older release kept its jobs' folders straight under flink/checkpoints
    legacy = tmp_path / "flink" / "checkpoints" / "job-legacy" / "chk-9"
    legacy.mkdir(parents=True)
    (legacy / "_metadata").write_bytes(b"meta")
    assert latest_checkpoint(settings) is None
    current = _checkpoint(tmp_path, "job-new", 2, 2_000)
    assert drop_unreadable_checkpoints(settings) == [legacy.parent]
    assert not legacy.exists()
    assert latest_checkpoint(settings) == current


def test_prune_keeps_the_restored_job_and_the_newest(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    restored = _checkpoint(tmp_path, "job-a", 1, 1_000).parent
    for n, job in enumerate(["job-b", "job-c", "job-d"], 2):
        _checkpoint(tmp_path, job, 1, n * 1_000)
    prune_checkpoints(settings, keep=restored)
    left = {p.name for p in checkpoint_root(settings).iterdir()}
    assert left == {"job-a", "job-c", "job-d"}


def test_the_rules_job_reads_only_the_columns_the_catalog_mentions(tmp_path: Path) -> None:
    from streamguard.rules.engine import column_names, columns_read

    rules = load_rules()
    assert columns_read(rules, {}) == [
        "transaction_id",
        "account_id",
        "amount",
        "payee_key_type",  # HIGH_AMOUNT's evidence
        "lat",
        "lon",
        "ts_ms",
    ]
    by_merchant = parse_rule(
        write_rule(tmp_path, "007_m.sql", HEADER, "SELECT * FROM x WHERE merchant_id = ${limit}")
    )
    assert columns_read([*rules, by_merchant], {}) == column_names()
    named = parse_rule(
        write_rule(tmp_path, "008_m.sql", HEADER, "SELECT merchant_id FROM t WHERE b > ${limit}")
    )
    assert "merchant_id" in columns_read([*rules, named], {})
    assert "card_token" not in columns_read([*rules, named], {})
