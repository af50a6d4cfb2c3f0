"""The list-style commands for scripts: `--json`, and tables that a pipe gets whole."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from streamguard.cli.main import app
from streamguard.rules.catalog import load_rules

runner = CliRunner()


def test_rules_list_json_gives_every_rule_with_its_parameters() -> None:
    result = runner.invoke(app, ["rules", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    rules = load_rules()
    assert rows.keys() == {rule.rule_id for rule in rules}
    for rule in rules:
        assert rows[rule.rule_id]["params"] == rule.params
        assert rows[rule.rule_id]["weight"] == rule.score_weight
        assert rows[rule.rule_id]["file"] == rule.path.name


def test_rules_list_without_a_terminal_cuts_no_id_short() -> None:
    result = runner.invoke(app, ["rules", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    for rule in load_rules():
        assert rule.rule_id in result.stdout and rule.path.name in result.stdout
        assert rule.description in result.stdout
