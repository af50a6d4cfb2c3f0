"""The services' least-privilege roles: created (or updated) after every migration.

The owner role `streamguard` owns the schema and runs migrations. The decision service logs in
as `streamguard_app`, which may only read and write the rows it handles: it cannot delete,
truncate, change the schema, edit the block/allow lists, or read the generator's ground truth.
The console logs in as `streamguard_console`: it reads the ledger and writes only cases, their
resolutions and the lists; it cannot change a transaction, an alert or a decision. Its
backtest requests are run by a worker that logs in as `streamguard_backtest`: it reads what a
backtest reads and writes only a run's state and result.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from pydantic import SecretStr

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

#: table -> privileges of the console role. The lists' audit trigger runs as the caller, hence
#: INSERT on list_changes. Users and tokens are made by the CLI as the owner.
CONSOLE_GRANTS: dict[str, str] = {
    "transactions": "SELECT",
    "fraud_alerts": "SELECT",
    "decisions": "SELECT",
    "decision_history": "SELECT",
    "dead_letters": "SELECT",
    "consumer_offsets": "SELECT",
    "merchant_stats": "SELECT",
    # the generator's ground truth, for the rules page's precision (the console decides nothing)
    "transaction_labels": "SELECT",
    "list_entries": "SELECT, INSERT, UPDATE (reason, added_by), DELETE",
    "list_changes": "SELECT, INSERT",
    "cases": "SELECT, INSERT, UPDATE (status, claimed_by, claimed_at, resolved_at)",
    "case_resolutions": "SELECT, INSERT",
    "console_users": "SELECT",
    "console_tokens": "SELECT",
    # a request, and ending as failed a run whose worker died without a word (never a result)
    "backtest_runs": "SELECT, INSERT (requested_by, period_from, period_to, candidate),"
    " UPDATE (status, error, finished_at)",
}
CONSOLE_SEQUENCES = ("list_changes_id_seq", "backtest_runs_id_seq")

#: table -> privileges of the backtest worker's role: what `backtest.run` reads (read only), and
#: a run's state and result. It cannot insert a request or touch any table of the pipeline.
BACKTEST_GRANTS: dict[str, str] = {
    "transactions": "SELECT",
    "fraud_alerts": "SELECT",
    "decisions": "SELECT",
    "transaction_labels": "SELECT",
    "case_resolutions": "SELECT",
    "list_changes": "SELECT",
    "backtest_runs": "SELECT, UPDATE (status, started_at, finished_at, error, result)",
}


def ensure_app_role(conn: psycopg.Connection, settings: Settings) -> None:
    """Create the decision service's role if missing, set its password, grant its rights."""
    password = settings.app_pg_password or settings.pg_password
    ensure_role(conn, settings.app_pg_user, password, APP_GRANTS, APP_SEQUENCES)


def ensure_console_role(conn: psycopg.Connection, settings: Settings) -> None:
    """Create the console's role if missing, set its password, grant its rights."""
    password = settings.console_pg_password or settings.pg_password
    ensure_role(conn, settings.console_pg_user, password, CONSOLE_GRANTS, CONSOLE_SEQUENCES)


def ensure_backtest_role(conn: psycopg.Connection, settings: Settings) -> None:
    """Create the backtest worker's role if missing, set its password, grant its rights."""
    password = settings.backtest_pg_password or settings.pg_password
    ensure_role(conn, settings.backtest_pg_user, password, BACKTEST_GRANTS, ())


def ensure_role(
    conn: psycopg.Connection,
    user: str,
    password: SecretStr,
    grants: dict[str, str],
    sequences: tuple[str, ...],
) -> None:
    """A login role with exactly `grants` on its tables (anything else revoked first)."""
    role = sql.Identifier(user)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"  # a new role is NOSUPERUSER NOCREATEDB NOCREATEROLE
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                role, sql.Literal(password.get_secret_value())
            )
        )
        database = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(database), role
            )
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        for table, privileges in grants.items():
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), role))
            conn.execute(
                sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), role)
            )
        for sequence in sequences:
            conn.execute(
                sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), role)
            )
