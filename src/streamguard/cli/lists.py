"""`streamguard lists add | remove | show`: block and allow lists for accounts, merchants, devices.

The lists live in PostgreSQL; the decision service reloads them within seconds of a change and
applies them to every transaction, alerted or not. This command connects as the owner role:
the services themselves may only read the lists.
"""

from __future__ import annotations

import typer
from rich.console import Console

from streamguard.cli.output import JsonOption, emit
from streamguard.config import get_settings
from streamguard.store import lists
from streamguard.store.db import connect

app = typer.Typer(
    help="Block and allow lists (accounts, merchants, devices).", no_args_is_help=True
)
console = Console()

ListArg = typer.Argument(..., help="block or allow")
EntityArg = typer.Argument(..., help="account, merchant or device")
ValueArg = typer.Argument(..., help="the account, merchant or device id")
LIST_COLUMNS = [
    (key, key.replace("_", " "))
    for key in ("list", "entity", "value", "reason", "added_by", "added_at")
]


@app.command()
def add(
    list_type: str = ListArg,
    entity: str = EntityArg,
    value: str = ValueArg,
    reason: str = typer.Option("", "--reason", "-r", help="why (shown in the decisions)"),
) -> None:
    """Put an entity on a list, e.g. `streamguard lists add block merchant M042 -r chargebacks`."""
    try:
        with connect(get_settings()) as conn:
            new = lists.add(conn, list_type, entity, value, reason)
    except lists.ListError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    verb = "added to" if new else "already on (reason updated)"
    console.print(f"{entity.lower()} {value.strip()} {verb} the {list_type.lower()} list")


@app.command()
def remove(list_type: str = ListArg, entity: str = EntityArg, value: str = ValueArg) -> None:
    """Take an entity off a list."""
    try:
        with connect(get_settings()) as conn:
            removed = lists.remove(conn, list_type, entity, value)
    except lists.ListError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not removed:
        console.print(f"{entity.lower()} {value.strip()} is not on the {list_type.lower()} list")
        raise typer.Exit(1)
    console.print(f"{entity.lower()} {value.strip()} removed from the {list_type.lower()} list")


@app.command()
def show(
    list_type: str = typer.Argument("", help="block or allow (default: both)"),
    as_json: bool = JsonOption,
) -> None:
    """Every entry, with its reason, who added it and when."""
    try:
        with connect(get_settings()) as conn:
            entries = lists.entries(conn, list_type or None)
    except lists.ListError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    rows = [
        {
            "list": row.list_type,
            "entity": row.entity_type,
            "value": row.entity_value,
            "reason": row.reason,
            "added_by": row.added_by,
            "added_at": row.added_at.isoformat(timespec="seconds") if row.added_at else None,
        }
        for row in entries
    ]
    emit(console, rows, LIST_COLUMNS, title="Lists", as_json=as_json)
    if not as_json:
        console.print(f"{len(rows)} entries")
