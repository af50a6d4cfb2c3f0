"""The stack's watch over a rules job on a user's Flink cluster (rules/remote.py), no cluster."""

from __future__ import annotations

from typing import Any

import pytest

from streamguard.rules.remote import FlinkRest, RemoteJobEndedError, watch


class FakeRest(FlinkRest):
    """Answers from a script: each item a job state, or an OSError to raise."""

    def __init__(self, answers: list[Any], jobs: list[dict] | None = None) -> None:
        super().__init__("localhost:1")
        self.answers = answers
        self.jobs = jobs or []

    def get(self, path: str) -> Any:
        if path == "/jobs/overview":
            return {"jobs": self.jobs}
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return {"state": answer}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_job_that_ended_ends_the_watch() -> None:
    clock = Clock()
    rest = FakeRest(["RUNNING", "RESTARTING", "RUNNING", "FAILED"])
    with pytest.raises(RemoteJobEndedError, match="is FAILED"):
        watch(rest, "j1", interval_s=1, sleep=clock.sleep, clock=clock)
    assert clock.now == 3


def test_a_silent_cluster_is_waited_for_then_given_up_on() -> None:
    clock = Clock()
    down = OSError("connection refused")
    rest = FakeRest([down, down, "RUNNING", *[down] * 10])
    with pytest.raises(RemoteJobEndedError, match="unreachable"):
        watch(rest, "j1", interval_s=2, unreachable_for_s=5, sleep=clock.sleep, clock=clock)
    # silent at 0 and 2 s, answered at 4 s (the count starts again), silent from 6 s to 12 s
    assert clock.now == 12


def test_only_a_job_of_that_name_that_has_not_ended_is_attached_to() -> None:
    jobs = [
        {"jid": "old", "name": "streamguard-rules", "state": "CANCELED"},
        {"jid": "other", "name": "someone-else", "state": "RUNNING"},
        {"jid": "live", "name": "streamguard-rules", "state": "RESTARTING"},
    ]
    assert FakeRest([], jobs).live_job() == "live"
    assert FakeRest([], jobs[:2]).live_job() is None
