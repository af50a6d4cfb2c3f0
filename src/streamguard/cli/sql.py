"""`streamguard sql "<query>"`: a continuous Flink SQL query over the live topics."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from streamguard.config import get_settings

errors = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `sql` command to the main app."""

    @app.command()
    def sql(
        query: Annotated[str, typer.Argument(help='e.g. "SELECT * FROM transactions"')],
        from_beginning: Annotated[
            bool, typer.Option("--from-beginning", help="read the topics from their start")
        ] = False,
        limit: Annotated[
            int, typer.Option("--limit", "-n", help="stop after this many rows (0: never)")
        ] = 0,
    ) -> None:
        """Run a Flink SQL query over `transactions` and `fraud_alerts`; print rows as they come.

        Tables: transactions (valid rows; `ts` is the event time), transactions_raw,
        transactions_on_time, fraud_alerts (with `appended_at`, Kafka's append time).
        """
        from streamguard.rules.adhoc import run_query

        try:
            names, changes = run_query(get_settings(), query, from_beginning=from_beginning)
        except Exception as exc:  # the planner's errors arrive as py4j-wrapped Java exceptions
            errors.print(f"[red]error:[/red] {_first_line(exc)}", highlight=False)
            raise typer.Exit(1) from exc
        print("op | " + " | ".join(names), flush=True)
        seen = 0
        try:
            for change in changes:
                values = " | ".join("NULL" if v is None else str(v) for v in change.values)
                print(f"{change.kind} | {values}", flush=True)
                seen += 1
                if limit and seen >= limit:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            changes.close()
        errors.print(f"{seen} rows", style="bold")
        sys.stdout.flush()


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
