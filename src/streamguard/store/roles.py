"""The decision service's least-privilege role: created (or updated) after every migration.

The owner role `streamguard` owns the schema and runs migrations; the services log in as
`streamguard_app`, which may only read and write the rows they handle. It cannot delete, truncate,
change the schema, edit the block/allow lists, or read the generator's ground truth.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from streamguard.config import Settings

#: table -> privileges of the application role. Column lists keep updates to what changes.
APP_GRANTS: dict[str, str] = {
    "transactions": "SELECT, INSERT, UPDATE (status, is_fraud)",
    "fraud_alerts": "SELECT, INSERT",
    "transaction_labels": "INSERT",
    "dead_letters": "INSERT",
    "consumer_offsets": "SELECT, INSERT, UPDATE (next_offset, updated_at)",
    "partition_owners": "SELECT, INSERT, UPDATE (owner, generation, claimed_at)",
    "decisions": "SELECT, INSERT, UPDATE",
    "decision_history": "SELECT, INSERT, UPDATE (published_at)",
    "merchant_stats": "SELECT, INSERT, UPDATE (tx_count, flagged_count, updated_at)",
    "list_entries": "SELECT",
    "list_changes": "SELECT",
    "awaiting_transactions": "SELECT, INSERT, DELETE",
}
APP_SEQUENCES = ("dead_letters_id_seq", "decision_history_id_seq")


def ensure_app_role(conn: psycopg.Connection, settings: Settings) -> None:
    """Create the role if missing, set its password from configuration, and grant its rights."""
    role = sql.Identifier(settings.app_pg_user)
    password = (settings.app_pg_password or settings.pg_password).get_secret_value()
    with conn.transaction():
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.app_pg_user,)
        ).fetchone()
        verb = "ALTER" if exists else "CREATE"  # a new role is NOSUPERUSER NOCREATEDB NOCREATEROLE
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
        )
        database = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(database), role
            )
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        for table, privileges in APP_GRANTS.items():
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), role))
            conn.execute(
                sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), role)
            )
        for sequence in APP_SEQUENCES:
            conn.execute(
                sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), role)
            )
