"""Which tables Flink's planner reads for each rule (run as a process: it starts a JVM).

`transactions` and `transactions_on_time` are given two different source tables, built from
the engine's own DDL and view texts, so each rule's plan names the view it really reads, through
any join, subquery or shared view. Prints {rule_id: [scanned source tables]} as JSON.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from streamguard.config import Settings
from streamguard.rules import engine
from streamguard.rules.catalog import load_rules, load_views

ON_TIME_RAW = "transactions_raw_on_time"
_SCAN = re.compile(r"TableSourceScan\(table=\[\[default_catalog, default_database, (\w+)")


def planned_sources() -> dict[str, list[str]]:
    """Each rule's scanned source tables, from EXPLAIN of its alert query."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    env = engine.create_environment(settings)
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "none.jsonl"
        empty.write_text("")
        engine.register_transactions(env, settings, engine.Source.file(empty))
        rules = load_rules()
        # the same raw table under another name, behind the on-time view only
        env.execute_sql(f"CREATE TEMPORARY TABLE {ON_TIME_RAW} LIKE transactions_raw")
        for view in load_views():
            env.execute_sql(f"DROP TEMPORARY VIEW {view.name}")
        env.execute_sql("DROP TEMPORARY VIEW transactions_on_time")
        live_view = engine.valid_transactions_view(settings)
        valid = live_view.replace(
            "VIEW transactions AS", "VIEW transactions_valid_on_time AS"
        ).replace("FROM transactions_raw", f"FROM {ON_TIME_RAW}")
        on_time = engine.ON_TIME_TRANSACTIONS_VIEW.replace(
            "FROM transactions\n", "FROM transactions_valid_on_time\n"
        )
        assert valid != live_view and on_time != engine.ON_TIME_TRANSACTIONS_VIEW
        env.execute_sql(valid)
        env.execute_sql(on_time)
        for view in load_views():
            env.execute_sql(view.create_sql(rules, settings.rule_params))
        return {
            rule.rule_id: sorted(set(_SCAN.findall(env.explain_sql(rule.alert_sql()))))
            for rule in rules
        }


if __name__ == "__main__":
    json.dump(planned_sources(), sys.stdout)
