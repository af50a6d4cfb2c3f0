"""Connections to PostgreSQL; repository functions take one, so callers own transactions."""

from __future__ import annotations

import psycopg

from streamguard.config import Settings


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """A new connection to the StreamGuard database."""
    return psycopg.connect(settings.db_url, autocommit=autocommit, connect_timeout=10)
