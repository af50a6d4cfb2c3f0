"""Tables for people, JSON for scripts: the list-style commands print through here.

Rich fits a table to the terminal and, without one, to 80 columns, cutting cells with an
ellipsis (`HIGH_VELOCI…`). A script reading a pipe must get every id whole, so without a
terminal the table is as wide as its content; `--json` gives the raw values instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

#: Wide enough for any row; rich sizes an unexpanded table to its content, not to this.
UNBOUNDED_WIDTH = 100_000

JsonOption = typer.Option(False, "--json", help="print JSON (a list of objects) for scripts")

#: (key in the row, column header)
Columns = Sequence[tuple[str, str]]


def emit(
    console: Console,
    rows: Sequence[Mapping[str, Any]],
    columns: Columns,
    *,
    title: str,
    as_json: bool,
    shown: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """Print `rows` as JSON, or as a table of `columns`; `shown` formats a key's cells."""
    if as_json:
        typer.echo(json.dumps([dict(row) for row in rows], default=str, ensure_ascii=False))
        return
    table = Table(title=title)
    for _, header in columns:
        table.add_column(header)
    formats = shown or {}
    for row in rows:
        table.add_row(*(_cell(row.get(key), formats.get(key)) for key, _ in columns))
    if not console.is_terminal:
        console.width = UNBOUNDED_WIDTH  # print(width=) can only narrow the console's own
    console.print(table)


def _cell(value: Any, shown: Callable[[Any], str] | None) -> str:
    if shown is not None:
        return shown(value)
    return "-" if value is None else str(value)
