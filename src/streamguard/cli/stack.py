"""`streamguard up | down | status`: the local stack."""

from __future__ import annotations

import subprocess
import sys

import typer
from rich.console import Console

from streamguard.cli.output import JsonOption, emit
from streamguard.config import Settings, get_settings
from streamguard.stack import services
from streamguard.stack.process import Paths, StackError

console = Console()


def register(app: typer.Typer) -> None:
    """Add the stack commands to the main app."""

    @app.command()
    def up(
        generator_rate: int = typer.Option(
            0, "--generator-rate", help="also stream this many synthetic tx/s (0: none)"
        ),
        only: str = typer.Option(
            ",".join(services.COMPONENTS), "--only", help="comma-separated components to start"
        ),
        decision_instances: int = typer.Option(
            0,
            "--decision-instances",
            help="decision service processes in one group (0: STREAMGUARD_DECISION_INSTANCES)",
        ),
    ) -> None:
        """Start PostgreSQL, Kafka, the Flink rules job, the decision service and the console;
        skip what
        runs already."""
        settings = get_settings()
        components = tuple(part.strip() for part in only.split(",") if part.strip())
        try:
            started = services.up(
                settings,
                generator_rate=generator_rate,
                only=components,
                decision_instances=decision_instances or None,
                say=console.print,
            )
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
        if not wipe and not keep and not yes and sys.stdin.isatty():
            wipe = typer.confirm(
                f"Wipe the data (Kafka log, PostgreSQL) in {settings.state_path}?", default=False
            )
        if wipe:
            services.wipe(settings)
            console.print(f"Wiped the data in {settings.state_path}.")

    @app.command()
    def status(as_json: bool = JsonOption) -> None:
        """Each component with its state, PID, port, restarts and last exit."""
        _print_status(get_settings(), as_json=as_json)

    @app.command()
    def where() -> None:
        """Where to look: the console first, then the Flink UI, psql, the logs and the topics."""
        from streamguard.rules import rest

        settings = get_settings()
        paths = Paths(settings.state_path)
        password = "" if settings.database_url else "PGPASSWORD=<STREAMGUARD_PG_PASSWORD> "
        psql = (
            "psql '<STREAMGUARD_DATABASE_URL>'"
            if settings.database_url
            else f"{password}psql -h localhost -p {settings.pg_port} -U {settings.pg_user} "
            f"-d {settings.pg_database}"
        )
        console.print(
            f"""
[bold]StreamGuard is running.[/bold]
  Console (open this):       {settings.console_url}
                             (log in as an analyst made with: streamguard console add-user NAME)
  Flink UI (the rules job):  {rest.base_url(settings)}
  Kafka bootstrap:           {settings.bootstrap_servers}
  PostgreSQL:                {psql}
                             (local default password: streamguard_2024)
  Logs:                      {paths.logs}/  — follow them with: streamguard logs --follow
  Topics:                    streamguard kafka topics
  Live alerts:               streamguard kafka tail fraud_alerts
  Stop:                      ./stop.sh   (./stop.sh --wipe --yes also deletes the data)
""",
            highlight=False,
        )

    @app.command()
    def logs(
        follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
        component: str = typer.Argument("", help="one component's log (default: all)"),
        lines: int = typer.Option(20, "--lines", "-n", help="lines to show from each log"),
    ) -> None:
        """Show (and follow) the stack's logs."""
        paths = Paths(get_settings().state_path)
        # a component of several instances (decide) shows each one's log (decide-1, decide-2...)
        files = sorted(paths.logs.glob(f"{component or '*'}.log")) or sorted(
            paths.logs.glob(f"{component}-*.log") if component else []
        )
        if not files:
            console.print(f"No logs in {paths.logs}.")
            raise typer.Exit(1)
        argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), *map(str, files)]
        raise typer.Exit(subprocess.call(argv))


STATUS_COLUMNS = [
    ("component", "component"),
    ("state", "state"),
    ("pid", "pid"),
    ("port", "port"),
    ("rss_mib", "memory"),
    ("restarts", "restarts"),
    ("last_exit", "last exit"),
    ("detail", "detail"),
]
STATE_COLOURS = {"running": "green", "stopped": "red"}


def _print_status(settings: Settings, *, as_json: bool = False) -> None:
    rows = [
        {
            "component": row.name,
            "state": row.state,
            "pid": row.pid,
            "port": row.port,
            "rss_mib": None if row.rss_mib is None else round(row.rss_mib, 1),
            "restarts": row.restarts,
            "last_exit": row.last_exit,
            "detail": row.detail,
        }
        for row in services.status(settings)
    ]
    emit(
        console,
        rows,
        STATUS_COLUMNS,
        title="StreamGuard stack",
        as_json=as_json,
        shown={
            "state": lambda state: f"[{STATE_COLOURS.get(state, 'yellow')}]{state}[/]",
            "rss_mib": lambda mib: "-" if mib is None else f"{mib:.0f} MiB",
            "last_exit": lambda text: text or "-",
        },
    )
