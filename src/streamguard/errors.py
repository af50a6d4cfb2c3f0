"""Which failures are worth retrying, decided in one place (marble-backend's model).

Errors are labelled here, at the boundary with PostgreSQL and Kafka, and the code above decides
from the label alone:
- RETRYABLE: the infrastructure went away and will come back (a connection lost or refused, a
  server restarting, a serialization failure or deadlock, a transient Kafka error). Retry with
  backoff; the offsets stored in PostgreSQL say where to resume.
- FATAL: an operator must act (bad configuration, credentials, missing privileges, a schema that
  does not match). Retrying cannot help: end with a clear message.
- UNEXPECTED: anything not labelled, i.e. a bug. It ends the process with its traceback (the
  supervisor restarts it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

import psycopg
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Kind(str, Enum):
    """What to do about a failure."""

    RETRYABLE = "retryable"
    FATAL = "fatal"
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class Label:
    """A failure's kind and a one-line reason for the log."""

    kind: Kind
    reason: str


class FatalError(RuntimeError):
    """A failure an operator must fix; its message says what and where."""


class FencedError(RuntimeError):
    """This instance lost a partition of its batch to another one: the batch must roll back."""


class GaveUpError(RuntimeError):
    """A retryable failure that lasted longer than the retry budget."""


#: SQLSTATEs (or their two-character classes) of failures that pass by themselves.
_PG_RETRYABLE = {
    "08",  # connection exception
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "40003",  # statement_completion_unknown
    "53300",  # too_many_connections
    "57P01",  # admin_shutdown (pg_ctl stop -m fast, pg_terminate_backend)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, shutting down)
    "57014",  # query_canceled
}
#: ... and of failures only an operator can fix.
_PG_FATAL = {
    "28",  # invalid authorization: bad password, unknown role, no pg_hba entry
    "3D000",  # invalid_catalog_name: the database does not exist
    "42",  # syntax error or access rule violation: privileges, missing tables (the schema)
    "0A",  # feature_not_supported
}

#: libpq reports a refused connection with a message and no SQLSTATE, so the server's refusals
#: are recognised here, once, by the words of its FATAL line (PostgreSQL's English messages).
_REFUSED_AT_CONNECT = {
    "password authentication failed": "28P01",
    "no pg_hba.conf entry": "28000",
    'role "': "28000",  # role "x" does not exist
    'database "': "3D000",  # database "x" does not exist
    "permission denied": "42501",
    "the database system is": "57P03",  # starting up, shutting down, in recovery mode
}

_KAFKA_FATAL_CODES = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError._INVALID_ARG,
    KafkaError._SSL,
}
_KAFKA_TRANSIENT_CODES = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._RESOLVE,
    KafkaError._WAIT_COORD,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NETWORK_EXCEPTION,
}


def classify(exc: BaseException) -> Label:
    """Label a failure RETRYABLE, FATAL or UNEXPECTED."""
    if isinstance(exc, psycopg.Error):
        return _postgres(exc)
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return classify_kafka(exc.args[0])
    if isinstance(exc, KafkaError):
        return classify_kafka(exc)
    if isinstance(exc, FencedError):  # a rebalance: resume from what is stored, as now assigned
        return Label(Kind.RETRYABLE, f"fenced: {exc}")
    if isinstance(exc, BufferError):  # the producer's queue is full: it drains by itself
        return Label(Kind.RETRYABLE, f"Kafka producer queue full: {exc}")
    if isinstance(exc, ValidationError | FatalError):
        return Label(Kind.FATAL, f"configuration: {_first_line(exc)}")
    if isinstance(exc, GaveUpError):
        return Label(Kind.UNEXPECTED, str(exc))
    return Label(Kind.UNEXPECTED, f"{type(exc).__name__}: {_first_line(exc)}")


def _postgres(exc: psycopg.Error) -> Label:
    sqlstate = exc.sqlstate or _refusal_sqlstate(exc)
    text = f"PostgreSQL {sqlstate or 'connection'}: {_first_line(exc)}"
    if sqlstate is None:
        # no server answer at all: refused, reset, timed out, or a connection already broken
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return Label(Kind.RETRYABLE, text)
        return Label(Kind.UNEXPECTED, text)
    if sqlstate in _PG_RETRYABLE or sqlstate[:2] in _PG_RETRYABLE:
        return Label(Kind.RETRYABLE, text)
    if sqlstate in _PG_FATAL or sqlstate[:2] in _PG_FATAL:
        return Label(Kind.FATAL, text)
    return Label(Kind.UNEXPECTED, text)


def _refusal_sqlstate(exc: psycopg.Error) -> str | None:
    if exc.sqlstate is not None or not isinstance(exc, psycopg.OperationalError):
        return None
    message = str(exc)
    if "FATAL:" not in message:
        return None
    refusal = message.split("FATAL:", 1)[1]
    return next((state for words, state in _REFUSED_AT_CONNECT.items() if words in refusal), None)


def classify_kafka(error: KafkaError) -> Label:
    """Label a Kafka error: its own fatal/retriable flags first, then the codes known here."""
    text = f"Kafka {error.name()}: {error.str()}"
    if error.fatal() or error.code() in _KAFKA_FATAL_CODES:
        return Label(Kind.FATAL, text)
    if error.retriable() or error.code() in _KAFKA_TRANSIENT_CODES:
        return Label(Kind.RETRYABLE, text)
    return Label(Kind.UNEXPECTED, text)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass(frozen=True)
class Backoff:
    """Exponential delays between retries: initial_s, doubling, at most max_s."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay_s(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1, 2, ...)."""
        return min(self.max_s, self.initial_s * 2 ** max(0, attempt - 1))


def retry(
    operation: Callable[[], T],
    *,
    what: str,
    budget_s: float,
    backoff: Backoff = Backoff(),
    stopping: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation` until it succeeds, retrying RETRYABLE failures with backoff.

    Anything else is raised at once (a FATAL one as FatalError); a retryable failure that
    outlasts `budget_s` raises GaveUpError. `stopping` ends the wait early (SIGTERM).
    """
    started = clock()
    attempt = 0
    while True:
        try:
            return operation()
        except Exception as exc:
            label = classify(exc)
            if isinstance(exc, FatalError):
                raise
            if label.kind is Kind.FATAL:
                raise FatalError(f"{what}: {label.reason}") from exc
            if label.kind is not Kind.RETRYABLE:
                raise
            attempt += 1
            delay = backoff.delay_s(attempt)
            if stopping() or clock() - started + delay > budget_s:
                raise GaveUpError(
                    f"{what}: still failing after {clock() - started:.0f} s: {label.reason}"
                ) from exc
            log.warning("%s failed (%s); retry %d in %.1f s", what, label.reason, attempt, delay)
            sleep(delay)
