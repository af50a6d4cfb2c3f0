"""The `streamguard` command: one Typer app with a sub-command per stage of the pipeline."""

from __future__ import annotations

import typer

from streamguard.cli import backtest, bench, console, generate, kafka, lists, rules, sql, stack

app = typer.Typer(
    help="StreamGuard: real-time fraud detection for Brazilian transactions.",
    no_args_is_help=True,
    add_completion=False,
)
stack.register(app)
app.add_typer(kafka.app, name="kafka")
app.add_typer(rules.app, name="rules")
app.add_typer(lists.app, name="lists")
app.add_typer(console.app, name="console")
generate.register(app)
bench.register(app)
sql.register(app)
backtest.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
