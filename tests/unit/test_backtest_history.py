"""Whether the topic still holds a backtest's span, from each partition's offsets."""

from __future__ import annotations

import pytest

from streamguard.backtest.history import Retained, holds


@pytest.mark.parametrize(
    ("partitions", "held"),
    [
        ([Retained(0, 10, 4), Retained(0, 0, -1)], True),  # nothing ever deleted
        ([Retained(5, 10, 7)], True),  # a retained record precedes the start
        ([Retained(5, 10, -1)], True),  # all it retains precedes the start
        ([Retained(5, 10, 5)], False),  # the first retained is the first of the span
        ([Retained(10, 10, -1)], False),  # emptied by retention: some of the span may be gone
        ([Retained(0, 10, 4), Retained(5, 10, 5)], False),  # one partition is enough
    ],
)
def test_the_topic_holds_the_span_unless_a_partition_may_have_lost_some(
    partitions: list[Retained], held: bool
) -> None:
    assert holds(partitions) is held
