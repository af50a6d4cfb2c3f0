"""Errors decided in one place: which failures are retried and which end the service."""

from __future__ import annotations

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException
from psycopg import errors as pg

from streamguard.config import Settings
from streamguard.errors import Backoff, FatalError, GaveUpError, Kind, classify, retry


def _pg(sqlstate: str) -> psycopg.Error:
    return pg.lookup(sqlstate)("from the server")


@pytest.mark.parametrize(
    "exc",
    [
        _pg("57P01"),  # AdminShutdown: pg_ctl stop -m fast, pg_terminate_backend
        _pg("57P03"),  # CannotConnectNow: starting up
        _pg("40001"),  # SerializationFailure
        _pg("40P01"),  # DeadlockDetected
        _pg("08006"),  # ConnectionFailure
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg.OperationalError("the connection is closed"),
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            "Connection refused\n\tIs the server running on that host?"
        ),
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            "FATAL:  the database system is shutting down"
        ),
        KafkaException(KafkaError(KafkaError._TRANSPORT)),
        KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)),
        KafkaException(KafkaError(KafkaError.REQUEST_TIMED_OUT, retriable=True)),
        KafkaError(KafkaError.NOT_COORDINATOR),
        BufferError("Local: Queue full"),
    ],
    ids=repr,
)
def test_transient_failures_are_retryable(exc: BaseException) -> None:
    assert classify(exc).kind is Kind.RETRYABLE


@pytest.mark.parametrize(
    "exc",
    [
        _pg("28P01"),  # InvalidPassword
        _pg("42501"),  # InsufficientPrivilege
        _pg("42P01"),  # UndefinedTable: the schema is not migrated
        _pg("42703"),  # UndefinedColumn
        _pg("3D000"),  # InvalidCatalogName: no such database
        # libpq reports a refused login with no SQLSTATE; these are its words
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  password authentication failed for user "streamguard_app"'
        ),
        psycopg.OperationalError(
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  database "nope" does not exist'
        ),
        KafkaException(KafkaError(KafkaError._INVALID_ARG)),
        KafkaException(KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED)),
        KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)),
        KafkaException(KafkaError(KafkaError._FATAL, fatal=True)),
        # a retriable code flagged fatal by librdkafka is fatal: the flag wins
        KafkaException(KafkaError(KafkaError._TRANSPORT, fatal=True)),
        FatalError("bad setting"),
    ],
    ids=repr,
)
def test_operator_failures_are_fatal(exc: BaseException) -> None:
    assert classify(exc).kind is Kind.FATAL


def test_a_bad_setting_is_fatal() -> None:
    with pytest.raises(Exception) as caught:
        Settings(_env_file=None, transactions_partitions=3, alerts_partitions=6)  # type: ignore[call-arg]
    assert classify(caught.value).kind is Kind.FATAL


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        KeyError("a bug"),
        _pg("23505"),  # UniqueViolation escaping the repositories is a bug, not an outage
        _pg("22P02"),  # InvalidTextRepresentation
        KafkaException(KafkaError(KafkaError._PARTITION_EOF)),
        GaveUpError("PostgreSQL down for 120 s"),
    ],
    ids=repr,
)
def test_unlabelled_failures_are_unexpected(exc: BaseException) -> None:
    assert classify(exc).kind is Kind.UNEXPECTED


def test_the_reason_names_the_sqlstate_and_the_first_line() -> None:
    reason = classify(pg.lookup("40P01")("deadlock detected\nDETAIL: ...")).reason
    assert reason == "PostgreSQL 40P01: deadlock detected"


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4)
    assert [backoff.delay_s(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _failing(times: int, exc: BaseException):  # type: ignore[no-untyped-def]
    calls = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"

    return operation, calls


def test_retry_waits_out_a_retryable_failure() -> None:
    clock = _Clock()
    operation, calls = _failing(3, _pg("57P01"))
    result = retry(operation, what="x", budget_s=60, clock=clock, sleep=clock.sleep)
    assert (result, len(calls), clock.slept) == ("done", 4, [0.5, 1.0, 2.0])


def test_retry_raises_a_fatal_failure_at_once() -> None:
    clock = _Clock()
    operation, calls = _failing(5, _pg("28P01"))
    with pytest.raises(FatalError, match="connecting: PostgreSQL 28P01"):
        retry(operation, what="connecting", budget_s=60, clock=clock, sleep=clock.sleep)
    assert (len(calls), clock.slept) == (1, [])


def test_retry_raises_an_unexpected_failure_unchanged() -> None:
    clock = _Clock()
    operation, calls = _failing(5, KeyError("bug"))
    with pytest.raises(KeyError):
        retry(operation, what="x", budget_s=60, clock=clock, sleep=clock.sleep)
    assert len(calls) == 1


def test_retry_gives_up_when_the_budget_is_spent() -> None:
    clock = _Clock()
    operation, calls = _failing(100, _pg("08006"))
    with pytest.raises(GaveUpError, match="still failing"):
        retry(operation, what="x", budget_s=5, clock=clock, sleep=clock.sleep)
    assert sum(clock.slept) <= 5
    assert len(calls) == len(clock.slept) + 1
