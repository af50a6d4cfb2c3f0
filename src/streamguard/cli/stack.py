"""`streamguard up | down | status`: the local stack."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streamguard.config import get_settings
from streamguard.stack import services
from streamguard.stack.process import StackError

console = Console()


def register(app: typer.Typer) -> None:
    """Add the stack commands to the main app."""

    @app.command()
    def up(
        generator_rate: int = typer.Option(
            0, "--generator-rate", help="also stream this many synthetic tx/s (0: none)"
        ),
    ) -> None:
        """Start PostgreSQL, Kafka, the Flink rules job and the ledger; skip what runs already."""
        settings = get_settings()
        try:
            started = services.up(settings, generator_rate=generator_rate, say=console.print)
        except StackError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        if not started:
            console.print("[green]The stack is already up.[/green]")
        _print_status(settings)

    @app.command()
    def down(
        wipe: bool = typer.Option(False, "--wipe", help="also delete Kafka and PostgreSQL data"),
        yes: bool = typer.Option(False, "--yes", "-y", help="do not ask before wiping"),
        keep: bool = typer.Option(False, "--keep", help="keep the data without asking"),
    ) -> None:
        """Stop every process the stack started; optionally wipe its data."""
        settings = get_settings()
        try:
            stopped = services.down(settings, say=console.print)
        except StackError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        if not stopped:
            console.print("Nothing was running.")
        if not wipe and not keep and not yes:
            wipe = typer.confirm(
                f"Wipe the data (Kafka log, PostgreSQL) in {settings.state_path}?", default=False
            )
        if wipe:
            services.wipe(settings)
            console.print(f"Wiped the data in {settings.state_path}.")

    @app.command()
    def status() -> None:
        """Each component with its state, PID and port."""
        _print_status(get_settings())


def _print_status(settings) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="StreamGuard stack")
    for column in ("component", "state", "pid", "port", "detail"):
        table.add_column(column)
    for row in services.status(settings):
        colour = {"running": "green", "stopped": "red"}.get(row.state, "yellow")
        table.add_row(row.name, f"[{colour}]{row.state}[/{colour}]", str(row.pid or "-"),
                      str(row.port or "-"), row.detail)
    console.print(table)
