"""Console analysts and their API tokens. Made by the CLI as the owner; read by the console."""

from __future__ import annotations

import re

import psycopg

from streamguard.domain.passwords import hash_password, new_token, token_digest, verify_password

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class UserError(ValueError):
    """A user name the schema would refuse, or an unknown user."""


def check_username(name: str) -> str:
    """The name, if it is a valid analyst name (lower-case letters, digits, `_.-`)."""
    if not _USERNAME.match(name):
        raise UserError(
            "a user name has 1 to 64 characters: lower-case letters, digits, '_', '.', '-',"
            " starting with a letter or digit"
        )
    return name


def set_user(conn: psycopg.Connection, name: str, password: str) -> bool:
    """Create the analyst, or set a new password; return True when the user is new."""
    digest = hash_password(password)
    row = conn.execute(
        "INSERT INTO console_users (username, password_hash) VALUES (%s, %s)"
        " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
        " disabled = false RETURNING (xmax = 0)",
        (check_username(name), digest),
    ).fetchone()
    return bool(row and row[0])


def add_token(conn: psycopg.Connection, name: str, label: str = "") -> str:
    """A new API token for the analyst; only its digest is stored, so show it now or never."""
    if not conn.execute(
        "SELECT 1 FROM console_users WHERE username = %s", (check_username(name),)
    ).fetchone():
        raise UserError(f"no console user {name!r}; make one with `streamguard console add-user`")
    token = new_token()
    conn.execute(
        "INSERT INTO console_tokens (token_sha256, username, label) VALUES (%s, %s, %s)",
        (token_digest(token), name, label),
    )
    return token


def authenticate(conn: psycopg.Connection, name: str, password: str) -> bool:
    """True when the analyst exists, is enabled and the password is theirs."""
    row = conn.execute(
        "SELECT password_hash FROM console_users WHERE username = %s AND NOT disabled", (name,)
    ).fetchone()
    return row is not None and verify_password(password, row[0])


def token_user(conn: psycopg.Connection, token: str) -> str | None:
    """The enabled analyst a token belongs to, or None."""
    row = conn.execute(
        "SELECT u.username FROM console_tokens t JOIN console_users u USING (username)"
        " WHERE t.token_sha256 = %s AND NOT u.disabled",
        (token_digest(token),),
    ).fetchone()
    return str(row[0]) if row else None
