"""`streamguard rules validate` on the real Flink planner: exit 0 for the catalog, 1 and the
rule's name for a rule that does not compile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamguard.rules.catalog import load_rules
from tests.stackfixture import with_classpath
from tests.unit.test_cli import cli

pytestmark = pytest.mark.integration


def test_validate_passes_the_catalog_and_fails_a_broken_rule(tmp_path: Path) -> None:
    rules = load_rules()
    good = cli("rules", "validate", STREAMGUARD_STATE_DIR=str(with_classpath(tmp_path / "state")))
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert f"{len(rules)} rules compile." in good.stdout

    folder = tmp_path / "rules"
    folder.mkdir()
    for rule in rules:
        shutil.copy(rule.path, folder / rule.path.name)
    broken = folder / "002_high_velocity.sql"
    broken.write_text(broken.read_text().replace("FROM account_history", "FROM no_such_table"))
    bad = cli(
        "rules",
        "validate",
        "--dir",
        str(folder),
        STREAMGUARD_STATE_DIR=str(with_classpath(tmp_path / "s")),
    )
    assert bad.returncode == 1, bad.stdout[-3000:]
    lines = bad.stdout.splitlines()
    assert any(line.startswith("error HIGH_VELOCITY (002_high_velocity.sql)") for line in lines)
    assert "no_such_table" in bad.stdout
    assert sum(line.startswith("ok ") for line in lines) == len(rules) - 1
    assert "rules compile" not in bad.stdout
