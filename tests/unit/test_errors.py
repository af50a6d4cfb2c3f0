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


#: The codes a broker outage or a bad setup produce, as a consumer or a delivery report hands
#: them over: without librdkafka's own retriable/fatal flags, so this module's table decides.
KAFKA_RETRYABLE = [
    KafkaError._TRANSPORT,  # the broker closed the connection (restarting)
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,  # a delivery that outlasted message.timeout.ms
    KafkaError._RESOLVE,
    KafkaError._WAIT_COORD,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NETWORK_EXCEPTION,
]
KAFKA_FATAL = [
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError._INVALID_ARG,  # a bad client setting
    KafkaError._SSL,
]


@pytest.mark.parametrize("code", KAFKA_RETRYABLE, ids=lambda c: KafkaError(c).name())
def test_transient_kafka_codes_are_retryable(code: int) -> None:
    assert classify(KafkaException(KafkaError(code))).kind is Kind.RETRYABLE


@pytest.mark.parametrize("code", KAFKA_FATAL, ids=lambda c: KafkaError(c).name())
def test_kafka_codes_only_an_operator_can_fix_are_fatal(code: int) -> None:
    label = classify(KafkaException(KafkaError(code)))
    assert label.kind is Kind.FATAL
    assert label.reason.startswith(f"Kafka {KafkaError(code).name()}")  # the log says which


class _Message:
    def __init__(self, error: KafkaError | None = None) -> None:
        self._error = error

    def error(self) -> KafkaError | None:
        return self._error


class _NoClient:
    def __init__(self, _config: object) -> None:
        pass


def _consumer(monkeypatch: pytest.MonkeyPatch, polls: list[list[_Message]]):  # type: ignore[no-untyped-def]
    from streamguard.decide import consumer as module

    monkeypatch.setattr(module, "Consumer", _NoClient)
    monkeypatch.setattr(module, "split", lambda messages, _bounds: messages)
    kafka = module.DecisionConsumer(Settings(_env_file=None), None, None)  # type: ignore[arg-type,call-arg]
    monkeypatch.setattr(kafka, "poll", lambda: polls.pop(0))
    return kafka


def test_a_fatal_consumer_error_raises_and_ends_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)  # not flagged fatal by librdkafka
    kafka = _consumer(monkeypatch, [[_Message(), _Message(denied)]])
    with pytest.raises(KafkaException) as raised:
        kafka.poll_batch()
    assert classify(raised.value).kind is Kind.FATAL  # run() exits 2 with its reason


def test_a_transient_consumer_error_is_logged_and_polling_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    down = _Message(KafkaError(KafkaError._TRANSPORT))
    kafka = _consumer(
        monkeypatch,
        [[down], [down, _Message(KafkaError(KafkaError._ALL_BROKERS_DOWN))], [_Message()]],
    )
    with caplog.at_level("INFO"):
        assert kafka.poll_batch() is None
        assert kafka.poll_batch() is None
        assert kafka.poll_batch() is not None  # the broker is back
    text = caplog.text
    assert "Kafka unavailable (retryable, 1 errors" in text and "_TRANSPORT" in text
    assert "Kafka answering again after" in text and "(3 transient errors)" in text


def test_the_clients_own_errors_are_labelled_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A broker going away reaches the service through error_cb, not as a message.
    kafka = _consumer(monkeypatch, [[], [_Message()], []])
    with caplog.at_level("INFO"):
        kafka.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
        assert kafka.poll_batch() is None  # logged, not raised
        assert kafka.poll_batch() is not None
    assert "Kafka unavailable (retryable" in caplog.text and "answering again" in caplog.text
    kafka.on_error(KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED))
    with pytest.raises(KafkaException) as raised:
        kafka.poll_batch()
    assert classify(raised.value).kind is Kind.FATAL
