"""Connections to PostgreSQL; repository functions take one, so callers own transactions."""

from __future__ import annotations

import psycopg

from streamguard.config import Settings


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """A new connection to the StreamGuard database as the owner role (migrations, admin CLI)."""
    return psycopg.connect(settings.db_url, autocommit=autocommit, connect_timeout=10)


def connect_app(
    settings: Settings, *, application_name: str = "streamguard", autocommit: bool = False
) -> psycopg.Connection:
    """A new connection as the services' least-privilege role."""
    return psycopg.connect(
        settings.app_db_url,
        autocommit=autocommit,
        connect_timeout=10,
        application_name=application_name,
    )


def connect_console(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """A new connection as the console's least-privilege role."""
    return psycopg.connect(
        settings.console_db_url,
        autocommit=autocommit,
        connect_timeout=10,
        application_name="streamguard-console",
    )
