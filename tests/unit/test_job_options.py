"""The rules job's latency settings reach Flink under its own option names and units."""

from __future__ import annotations

import pydantic
import pytest

from streamguard.config import Settings
from streamguard.rules.engine import job_options


def test_the_watermark_interval_and_buffer_timeout_reach_the_job() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, flink_watermark_interval_ms=50, flink_buffer_timeout_ms=10
    )
    options = job_options(settings)
    assert options["pipeline.auto-watermark-interval"] == "50 ms"
    assert options["execution.buffer-timeout.interval"] == "10 ms"


def test_a_watermark_interval_of_zero_or_a_negative_buffer_timeout_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="flink_watermark_interval_ms"):
        Settings(_env_file=None, flink_watermark_interval_ms=0)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="flink_buffer_timeout_ms"):
        Settings(_env_file=None, flink_buffer_timeout_ms=-1)  # type: ignore[call-arg]
