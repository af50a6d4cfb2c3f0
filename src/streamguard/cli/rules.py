"""`streamguard rules`: the declarative rule catalog."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streamguard.rules.catalog import load_rules

app = typer.Typer(help="List, validate and deploy the Flink SQL rules.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_rules() -> None:
    """Every rule with its id, severity, weight and description."""
    table = Table(title="Rules")
    for column in ("id", "severity", "weight", "params", "description", "file"):
        table.add_column(column)
    for rule in load_rules():
        params = ", ".join(f"{k}={v}" for k, v in rule.params.items())
        table.add_row(
            rule.rule_id,
            rule.severity,
            str(rule.score_weight),
            params,
            rule.description,
            rule.path.name,
        )
    console.print(table)
