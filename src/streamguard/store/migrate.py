"""Numbered SQL migrations, applied once each, in order, each in its own transaction."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import psycopg

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migrations_dir() -> Path:
    """The packaged migrations folder."""
    return Path(str(resources.files("streamguard.store") / "migrations"))


def pending(conn: psycopg.Connection, folder: Path | None = None) -> list[tuple[int, Path]]:
    """The migrations not applied yet, in order."""
    files = []
    for path in sorted((folder or migrations_dir()).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration {path.name} must be named NNN_snake_case.sql")
        files.append((int(match.group(1)), path))
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [(version, path) for version, path in files if version not in applied]


def migrate(conn: psycopg.Connection, folder: Path | None = None) -> list[str]:
    """Apply every pending migration; return the names applied."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
        done = []
        for version, path in pending(conn, folder):
            conn.execute(path.read_text(encoding="utf-8"))
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (version, path.name),
            )
            done.append(path.name)
    return done
