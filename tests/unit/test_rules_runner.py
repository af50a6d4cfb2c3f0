"""The rules process plans and submits its job before any other Python thread runs.

A second Python thread that calls py4j while the job is planned (the heartbeat's thread can,
through the garbage collector's finalizers of Java objects) makes py4j serve later planning
calls on another Java thread, where Calcite's thread-local metadata provider is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamguard.config import Settings
from streamguard.rules import runner


class Recorder:
    """What happened, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []


def test_the_heartbeat_starts_after_the_job_is_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = Recorder()

    class Result:
        def get_job_client(self) -> None:
            return None

        def wait(self) -> None:
            seen.events.append("wait")

    class Statements:
        def execute(self) -> Result:
            seen.events.append("execute")
            return Result()

    class Heartbeat:
        def __init__(self, settings: Settings) -> None:
            pass

        def start(self) -> Heartbeat:
            seen.events.append("heartbeat")
            return self

        def stop(self) -> None:
            seen.events.append("stop")

    def build(settings: Settings, **_: Any) -> Statements:
        seen.events.append("plan")
        return Statements()

    settings = Settings(state_dir=tmp_path)
    monkeypatch.setattr(runner, "get_settings", lambda: settings)
    monkeypatch.setattr(runner.signal, "signal", lambda *_: None)  # keep pytest's handlers
    monkeypatch.setattr(runner, "latest_checkpoint", lambda _: None)
    monkeypatch.setattr(runner, "build_rules_job", build)
    monkeypatch.setattr(runner, "Heartbeat", Heartbeat)
    runner.main()
    assert seen.events == ["plan", "execute", "heartbeat", "wait", "stop"]
