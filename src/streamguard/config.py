"""One place for configuration: environment variables prefixed STREAMGUARD_, or a .env file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamguard.domain.event_time import (
    DEFAULT_MAX_EVENT_AGE_S,
    DEFAULT_MAX_FUTURE_SKEW_S,
    EventTimeBounds,
)

#: The original project's documented local password: fine for the private local cluster, refused
#: for the service role on a server given by STREAMGUARD_DATABASE_URL (see the validator).
LOCAL_DEFAULT_PASSWORD = "streamguard_2024"

#: The decision service's settings had this prefix before the component took the one name
#: `decide`. Such a variable is refused, not ignored: its value would silently stop applying.
RENAMED_PREFIXES = {"STREAMGUARD_LEDGER_": "STREAMGUARD_DECIDE_"}  # rename: keep


def renamed_variables(names: list[str]) -> list[str]:
    """'OLD -> NEW' for each variable in `names` that carries a renamed prefix."""
    found = []
    for name in names:
        for old, new in RENAMED_PREFIXES.items():
            if name.upper().startswith(old):
                found.append(f"{name} -> {new}{name[len(old) :].upper()}")
    return sorted(found)


def _env_file_names(path: Path) -> list[str]:
    """The variable names a .env file sets."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    pairs = (line.strip().removeprefix("export ").partition("=") for line in lines)
    return [name.strip() for name, eq, _ in pairs if eq and not name.startswith("#")]


class Settings(BaseSettings):
    """Every knob of StreamGuard. `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMGUARD_", env_file=".env", extra="ignore", frozen=True
    )

    # Where the local stack keeps its data, logs and PID files.
    state_dir: Path = Path(".streamguard")

    # Kafka. Leave kafka_bootstrap empty to run the local single-node broker.
    kafka_bootstrap: str = ""
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap_mb: int = 768
    # How the consumers (the decision service, the rules job's source) fetch: the broker answers
    # a fetch once it holds fetch_min_bytes for it or fetch_wait_ms have passed. Kafka's
    # default, 1 byte, answers every produced batch with a fetch of its own; at 5,000 tx/s
    # 64 KiB / 100 ms cut the pipeline's CPU per transaction by a fifth (README, Results), for
    # up to 100 ms more between Kafka and a verdict or an alert. 1 restores Kafka's behaviour.
    kafka_fetch_min_bytes: int = Field(default=65_536, ge=1)
    kafka_fetch_wait_ms: int = Field(default=100, ge=0)
    transactions_partitions: int = 3
    alerts_partitions: int = 3
    decisions_partitions: int = 3

    # PostgreSQL. Leave database_url empty to run the private local cluster.
    database_url: SecretStr | None = None
    pg_port: int = 5432
    pg_user: str = "streamguard"
    pg_password: SecretStr = SecretStr(LOCAL_DEFAULT_PASSWORD)
    pg_database: str = "streamguard"

    # Flink SQL.
    flink_ui_port: int = 8081
    flink_heap_mb: int = 2560
    flink_parallelism: int = 1
    flink_remote: str = ""  # HOST:PORT of an existing cluster's REST endpoint
    # The out-of-order bound; fractions of a second are allowed (a shorter one alerts sooner).
    watermark_delay_s: float = Field(default=2.0, ge=0)
    idle_timeout_s: int = 30
    # How often the rules job's source emits a watermark, and how long an operator's output
    # buffer may wait to fill before it is sent downstream (Flink's defaults: 200 ms and 100 ms).
    # A windowed alert waits for one watermark and crosses a few such buffers.
    flink_watermark_interval_ms: int = Field(default=200, ge=1)
    flink_buffer_timeout_ms: int = Field(default=100, ge=0)
    # Event-time sanity against Kafka's append time (domain/event_time.py): a transaction more
    # than this far ahead of its arrival, or this much older, is dead-lettered and never moves
    # the watermark. Real clocks disagree by seconds, so the future bound is seconds.
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    # The rules process stamps a heartbeat on every transactions partition this often, so the
    # watermark (and every window) moves on when traffic stops. 0 turns them off.
    heartbeat_interval_s: float = 1.0
    # A heap checkpoint serializes every account's state: every 10 s it took about a fifth of
    # the job's catch-up rate on two cores. A restart replays at most this much input (seconds
    # of work) and re-sends those alerts with the same ids, which the decision service deduplicates.
    checkpoint_interval_s: int = 60
    local_time_zone: str = "America/Sao_Paulo"
    rule_params: dict[str, str] = Field(default_factory=dict)

    # The stream generator that ./start.sh runs.
    generator_rate: int = 20

    # The decision service (`decide`). It logs in as a least-privilege role; leave
    # app_pg_password empty to reuse pg_password (local development only) and app_database_url
    # empty to derive it from the owner's URL.
    app_pg_user: str = "streamguard_app"
    app_pg_password: SecretStr | None = None
    app_database_url: SecretStr | None = None
    decision_review_score: int = 40
    decision_block_score: int = 70
    list_refresh_s: float = 2.0
    # The most messages in one batch (one database transaction). A backlog fills it; live
    # traffic does not wait for it. 20,000 drained a backlog faster than 5,000 or 10,000: the
    # merchant counters, the commit and the round trips are paid once per batch.
    decide_batch_size: int = 20_000
    # How long a poll waits for more messages after the first. Each batch costs a dozen round
    # trips and a commit whatever its size, so at live rates this trades a few ms of latency
    # for far fewer, larger batches.
    decide_linger_ms: float = 20
    # The service's GIL switch interval: its writer threads need the GIL back after each of a
    # dozen PostgreSQL round trips per batch, and Python's default lets the parsing thread keep
    # it up to 5 ms each time. The gain is small: 1.04-1.09x on a backlog.
    decide_gil_switch_ms: float = 0.5
    decide_instance_id: str = "decide-1"
    # How many decision service processes `streamguard up` runs in one consumer group; each has
    # its own instance id (decide-1, decide-2, ...), PID file, log and status row.
    decision_instances: int = Field(default=1, ge=1)
    # The decision instances' consumer group, and the key of their offsets and partition owners
    # in PostgreSQL. Only a second, independent set of instances (a shadow run on its own
    # database reading the same topics) needs another one.
    decide_group: str = Field(default="streamguard-decide", min_length=1)
    # The stack's supervisor (rules, decide, generator): a component that dies is restarted
    # after first_delay_s, doubling up to 30 s, at most max_restarts times in a row (a run of a
    # minute resets the count).
    supervisor_max_restarts: int = 5
    supervisor_first_delay_s: float = 1.0
    # How long the service keeps retrying a retryable failure (PostgreSQL restarting, a lost
    # connection, a transient Kafka error) without committing a batch before it gives up.
    decide_retry_for_s: float = 120

    # The console (web pages and the REST API). It binds to loopback unless told otherwise and
    # logs in as its own least-privilege role (reads the ledger, writes cases and lists).
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    # Signs the session cookies. Empty: a random one per process (development only: sessions
    # do not survive a restart), which the console says in its log.
    console_secret: SecretStr | None = None
    console_pg_user: str = "streamguard_console"
    console_pg_password: SecretStr | None = None
    console_database_url: SecretStr | None = None
    # How often the one reader behind the overview's live counts asks PostgreSQL, in seconds.
    console_live_interval_s: float = 1.0
    # The console's backtests run in a worker process that logs in as this role (reads what a
    # backtest reads, writes only a run's state and result); it inherits the console's settings.
    backtest_pg_user: str = "streamguard_backtest"
    backtest_pg_password: SecretStr | None = None
    backtest_database_url: SecretStr | None = None

    @field_validator(
        "database_url",
        "app_database_url",
        "app_pg_password",
        "console_secret",
        "console_pg_password",
        "console_database_url",
        "backtest_pg_password",
        "backtest_database_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _no_renamed_variables(self) -> Settings:
        env_file = self.model_config.get("env_file")
        names = [
            *os.environ,
            *(_env_file_names(Path(env_file)) if isinstance(env_file, str) else []),
        ]
        renamed = renamed_variables(names)
        if renamed:
            raise ValueError(
                "the decision service's settings are named STREAMGUARD_DECIDE_* now; rename "
                + ", ".join(renamed)
            )
        return self

    @model_validator(mode="after")
    def _account_topics_copartitioned(self) -> Settings:
        # An account's transactions and alerts must share a partition number (murmur2 of the
        # key modulo the count), or two decision instances would each see half of the evidence.
        if self.transactions_partitions != self.alerts_partitions:
            raise ValueError(
                "STREAMGUARD_TRANSACTIONS_PARTITIONS and STREAMGUARD_ALERTS_PARTITIONS must be "
                f"equal (got {self.transactions_partitions} and {self.alerts_partitions}): both "
                "topics are keyed by account and one decision instance must own both halves"
            )
        return self

    @model_validator(mode="after")
    def _no_default_password_on_a_server(self) -> Settings:
        # The migrations set the service role's password from these settings; on a real server
        # that would be a password printed in the README.
        if self.database_url is None:
            return self
        password = (self.app_pg_password or self.pg_password).get_secret_value()
        if password == LOCAL_DEFAULT_PASSWORD:
            raise ValueError(
                "STREAMGUARD_DATABASE_URL names a PostgreSQL server, so the service role "
                f"{self.app_pg_user!r} must not get the local default password: set "
                "STREAMGUARD_APP_PG_PASSWORD (from a secret store, not a file in the repo)"
            )
        return self

    @model_validator(mode="after")
    def _event_time_bounds_valid(self) -> Settings:
        self.event_time_bounds  # noqa: B018 - raises ValueError on a bound Flink cannot take
        return self

    @property
    def event_time_bounds(self) -> EventTimeBounds:
        """The event-time sanity bounds that the decision service and the rules job share."""
        return EventTimeBounds(self.max_future_skew_s, self.max_event_age_s)

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka bootstrap list the clients use."""
        return self.kafka_bootstrap or f"localhost:{self.kafka_port}"

    @property
    def runs_local_kafka(self) -> bool:
        """True when the stack starts its own broker."""
        return not self.kafka_bootstrap

    @property
    def runs_local_postgres(self) -> bool:
        """True when the stack starts its own PostgreSQL cluster."""
        return self.database_url is None

    @property
    def db_url(self) -> str:
        """The owner role's psycopg URL (migrations and the CLI connect with it)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = self.pg_password.get_secret_value()
        return f"postgresql://{self.pg_user}:{password}@localhost:{self.pg_port}/{self.pg_database}"

    @property
    def app_db_url(self) -> str:
        """The URL of the decision service's least-privilege role."""
        if self.app_database_url is not None:
            return self.app_database_url.get_secret_value()
        return self._role_url(self.app_pg_user, self.app_pg_password or self.pg_password)

    @property
    def console_db_url(self) -> str:
        """The URL of the console's least-privilege role."""
        if self.console_database_url is not None:
            return self.console_database_url.get_secret_value()
        return self._role_url(self.console_pg_user, self.console_pg_password or self.pg_password)

    @property
    def backtest_db_url(self) -> str:
        """The URL of the backtest worker's least-privilege role."""
        if self.backtest_database_url is not None:
            return self.backtest_database_url.get_secret_value()
        return self._role_url(self.backtest_pg_user, self.backtest_pg_password or self.pg_password)

    def _role_url(self, user: str, password: SecretStr) -> str:
        """The owner's URL with another role's name and password."""
        from urllib.parse import quote, urlsplit, urlunsplit

        parts = urlsplit(self.db_url)
        host = parts.netloc.rpartition("@")[2]
        secret = quote(password.get_secret_value(), safe="")
        netloc = f"{quote(user, safe='')}:{secret}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def console_url(self) -> str:
        """The address to open in a browser."""
        host = "127.0.0.1" if self.console_host in ("0.0.0.0", "::") else self.console_host
        return f"http://{host}:{self.console_port}"

    @property
    def state_path(self) -> Path:
        """The state folder as an absolute path."""
        return self.state_dir.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
