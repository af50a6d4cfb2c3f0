"""`streamguard console`: run the web console alone, and manage its analysts and API tokens.

`streamguard up` starts the console with the rest of the stack; `streamguard console` runs it in
the foreground against whatever stack the settings name. Users and tokens are made here as the
owner role: the console itself may only read them.
"""

from __future__ import annotations

import getpass
import os
import sys

import typer
from rich.console import Console

from streamguard.config import get_settings
from streamguard.domain.passwords import PasswordError
from streamguard.store import console_users
from streamguard.store.db import connect

PASSWORD_ENV = "STREAMGUARD_CONSOLE_PASSWORD"

app = typer.Typer(
    help="The web console (pages and REST API); without a sub-command, serve it in the foreground.",
    invoke_without_command=True,
)
console = Console()


@app.callback()
def serve(ctx: typer.Context) -> None:
    """Serve the console on STREAMGUARD_CONSOLE_HOST:STREAMGUARD_CONSOLE_PORT until Ctrl+C."""
    if ctx.invoked_subcommand is not None:
        return
    from streamguard.console.__main__ import main

    main()


def _password() -> str:
    """From STREAMGUARD_CONSOLE_PASSWORD, else a prompt typed twice: never an argument."""
    supplied = os.environ.get(PASSWORD_ENV)
    if supplied:
        return supplied
    if not sys.stdin.isatty():
        console.print(f"[red]error:[/red] no terminal to ask on; set {PASSWORD_ENV}")
        raise typer.Exit(2)
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        console.print("[red]error:[/red] the two passwords differ")
        raise typer.Exit(2)
    return first


@app.command("add-user")
def add_user(name: str = typer.Argument(..., help="the analyst's user name")) -> None:
    """Create an analyst (or set a new password). The password comes from a prompt or
    STREAMGUARD_CONSOLE_PASSWORD, never from the command line."""
    try:
        console_users.check_username(name)
        password = _password()
        with connect(get_settings()) as conn:
            new = console_users.set_user(conn, name, password)
    except (console_users.UserError, PasswordError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"console user {name} {'created' if new else 'has a new password'}")


@app.command("add-token")
def add_token(
    name: str = typer.Argument(..., help="the analyst the token acts as"),
    label: str = typer.Option("", "--label", help="what the token is for"),
) -> None:
    """Make an API token for an analyst and print it once (only its digest is stored)."""
    try:
        with connect(get_settings()) as conn:
            token = console_users.add_token(conn, name, label)
    except console_users.UserError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print("API token (shown once; send it as `Authorization: Bearer <token>`):")
    print(token)
