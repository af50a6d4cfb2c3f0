"""The private PostgreSQL 15 cluster: initdb and pg_ctl in the state folder.

initdb refuses to run as root, so when StreamGuard runs as root the cluster belongs to the
unprivileged `postgres` user that Debian's package creates. The local socket lives in the data
folder (mode 0700), so only that user (and root) can reach the superuser; the services log in
over TCP with a password.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from streamguard.config import Settings
from streamguard.stack.process import Paths, StackError, require_free_port

NAME = "postgres"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


def data_dir(settings: Settings) -> Path:
    """The cluster's data folder."""
    return settings.state_path / "postgres" / "data"


def _owner() -> str | None:
    """The OS user that runs the cluster: `postgres` when we are root, else ourselves."""
    return "postgres" if os.geteuid() == 0 else None


def _as_owner(argv: list[str]) -> list[str]:
    owner = _owner()
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


def binary(name: str) -> str:
    """A PostgreSQL 15 server program; installs Debian's postgresql-15 when it is missing."""
    path = PG_BIN / name
    if not path.exists():
        install()
    if not path.exists():
        raise StackError(f"postgres: {path} is missing; install Debian's postgresql-15")
    return str(path)


def install() -> None:
    """apt-get install postgresql-15 (needs root)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(
            "postgres: PostgreSQL 15 is not installed. Run `sudo apt-get install postgresql-15`, "
            "or point STREAMGUARD_DATABASE_URL at an existing server."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql-15"],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise StackError(f"postgres: {' '.join(argv)} failed:\n{result.stderr[-2000:]}")


def _run(argv: list[str], what: str, log: Path) -> None:
    result = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"postgres: {what} failed; see its log: {log}\n{result.stdout}{result.stderr}"
        )


def init_cluster(settings: Settings) -> bool:
    """Create the cluster once; return True when it was new."""
    data = data_dir(settings)
    if (data / "PG_VERSION").exists():
        return False
    data.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    if owner and subprocess.run(_as_owner(["test", "-x", str(data.parent.parent)])).returncode:
        raise StackError(
            f"postgres: the cluster runs as the unprivileged user {owner!r}, who cannot reach "
            f"{data.parent.parent} (a parent folder is private, e.g. /root). Set "
            "STREAMGUARD_STATE_DIR to a folder that user can traverse, e.g. /var/tmp/streamguard."
        )
    if owner:
        entry = pwd.getpwnam(owner)
        for folder in (data.parent, data):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(data, 0o700)
    log = Paths(settings.state_path).log(NAME)
    _run(
        [
            binary("initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        "initdb",
        log,
    )
    return True


def start(settings: Settings) -> int:
    """Start the cluster (initdb on first run), create the role and database; return its PID."""
    require_free_port(settings.pg_port, "STREAMGUARD_PG_PORT", NAME)
    paths = Paths(settings.state_path)
    paths.ensure()
    new = init_cluster(settings)
    data = data_dir(settings)
    log = paths.log(NAME)
    log.touch()
    if _owner():
        entry = pwd.getpwnam(_owner() or "")
        os.chown(log, entry.pw_uid, entry.pw_gid)
    options = (
        f"-p {settings.pg_port} -c listen_addresses=localhost "
        f"-c unix_socket_directories={data} -c shared_buffers=256MB "
        "-c max_connections=50 -c synchronous_commit=on "
        # decide's bulk inserts fill the default 1 GB of WAL within minutes; after each
        # checkpoint every index page touched is logged whole again, so checkpoints are spaced
        # out, and lz4 compresses those page images at a fraction of pglz's CPU
        # (wal_compression=on), which two shared cores are short of.
        "-c wal_compression=lz4 -c max_wal_size=8GB -c checkpoint_timeout=15min"
    )
    _run(
        [
            binary("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        "pg_ctl start",
        log,
    )
    pid = postmaster_pid(settings)
    if pid is None:
        raise StackError(f"postgres: started but wrote no postmaster.pid; see its log: {log}")
    Paths(settings.state_path).pidfile(NAME).write_text(f"{pid}\n")
    if new or not _role_exists(settings):
        bootstrap(settings)
    return pid


def postmaster_pid(settings: Settings) -> int | None:
    """The postmaster's PID from its own PID file."""
    try:
        return int((data_dir(settings) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def superuser_conninfo(settings: Settings) -> str:
    """A libpq connection string for the superuser over the data folder's socket."""
    return f"host={data_dir(settings)} port={settings.pg_port} user={SUPERUSER} dbname=postgres"


def _role_exists(settings: Settings) -> bool:
    import psycopg

    with psycopg.connect(superuser_conninfo(settings), autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.pg_user,)
        ).fetchone()
    return row is not None


def bootstrap(settings: Settings) -> None:
    """Create the application's owner role and database (idempotent)."""
    import psycopg
    from psycopg import sql

    password = settings.pg_password.get_secret_value()
    with psycopg.connect(superuser_conninfo(settings), autocommit=True) as conn:
        role = sql.Identifier(settings.pg_user)
        if conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.pg_user,)
        ).fetchone():
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
            )
        else:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    role, sql.Literal(password)
                )
            )
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(settings.pg_database), role
                )
            )


def restart(settings: Settings) -> int:
    """pg_ctl restart -m fast: every session is cut, as in a failover; return the new PID."""
    data = data_dir(settings)
    log = Paths(settings.state_path).log(NAME)
    _run(
        [
            binary("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        ],
        "pg_ctl restart",
        log,
    )
    pid = postmaster_pid(settings)
    if pid is None:
        raise StackError(f"postgres: restarted but wrote no postmaster.pid; see its log: {log}")
    Paths(settings.state_path).pidfile(NAME).write_text(f"{pid}\n")
    return pid


def stop(settings: Settings) -> int | None:
    """pg_ctl stop (fast); return the PID that was stopped."""
    pid = postmaster_pid(settings)
    data = data_dir(settings)
    if pid is not None and (data / "postmaster.pid").exists():
        _run(
            [binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
            "pg_ctl stop",
            Paths(settings.state_path).log(NAME),
        )
    Paths(settings.state_path).pidfile(NAME).unlink(missing_ok=True)
    return pid
