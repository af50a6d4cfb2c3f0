"""The message browser: read a window of a topic without joining a consumer group.

The consumer is assigned its partitions directly (no subscribe, no commit), so browsing never
shows up as a group, never moves anyone's offsets, and ends when the window is read.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from streamguard.config import Settings
from streamguard.domain.messages import ShownMessage, shown
from streamguard.domain.pipeline import read_range
from streamguard.kafka.admin import KafkaUnavailableError

#: The most messages one browse returns, and the most it scans per partition for a key.
MAX_LIMIT = 200
KEY_SCAN_PER_PARTITION = 5_000
#: The most messages one consume returns, and the longest it waits (it returns sooner, as soon
#: as it holds every offset still missing or BATCH of them). The wait is short because an
#: offset that never reaches us (a transaction's marker) is only seen passed in the consumer's
#: position, checked between consumes: at 200 ms such a partition cost a whole wait.
BATCH = 500
POLL_S = 0.02


@dataclass(frozen=True)
class BrowseRequest:
    """What to read: a topic, optionally one partition, from an offset or a time, by key."""

    topic: str
    partition: int | None = None
    limit: int = 20
    from_offset: int | None = None
    from_time: datetime | None = None
    key: str | None = None


def browse(
    settings: Settings, request: BrowseRequest, timeout_s: float = 2.0
) -> list[ShownMessage]:
    """The messages of the request, newest first; KafkaUnavailableError when Kafka is down."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"streamguard-console-browse-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "socket.timeout.ms": int(timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(request.topic, timeout=timeout_s)
        found = metadata.topics.get(request.topic)
        if found is None or found.error is not None:
            return []
        numbers = sorted(found.partitions)
        if request.partition is not None:
            numbers = [p for p in numbers if p == request.partition]
        windows = _windows(consumer, request, numbers, timeout_s)
        messages = _read(consumer, request.topic, windows, request.key, timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(str(exc)) from exc
    finally:
        consumer.close()
    if request.from_offset is None and request.from_time is None:
        messages.sort(key=lambda m: (m.timestamp is not None, m.timestamp, m.offset), reverse=True)
    else:  # from a point on: oldest first, as a log reads
        messages.sort(key=lambda m: (m.timestamp is not None, m.timestamp, m.offset))
    return messages[: request.limit]


def _windows(
    consumer: object, request: BrowseRequest, numbers: list[int], timeout_s: float
) -> dict[int, tuple[int, int]]:
    """partition -> [start, stop) to read."""
    from confluent_kafka import TopicPartition

    starts: dict[int, int | None] = {p: request.from_offset for p in numbers}
    if request.from_time is not None:
        wanted = [
            TopicPartition(request.topic, p, int(request.from_time.timestamp() * 1000))
            for p in numbers
        ]
        for tp in consumer.offsets_for_times(wanted, timeout=timeout_s):  # type: ignore[attr-defined]
            starts[tp.partition] = tp.offset if tp.offset >= 0 else None
    limit = KEY_SCAN_PER_PARTITION if request.key else request.limit
    windows = {}
    for p in numbers:
        low, high = consumer.get_watermark_offsets(  # type: ignore[attr-defined]
            TopicPartition(request.topic, p), timeout=timeout_s, cached=False
        )
        if request.from_time is not None and starts[p] is None:
            continue  # nothing at or after that time in this partition
        window = read_range(low, high, limit, starts[p])
        if window is not None:
            windows[p] = window
    return windows


def _read(
    consumer: object,
    topic: str,
    windows: dict[int, tuple[int, int]],
    key: str | None,
    timeout_s: float,
) -> list[ShownMessage]:
    """Consume each window to its stop offset (fixed up front from the high watermark).

    It returns as soon as every partition's window is read: each consume asks for no more than
    the offsets still missing, so the last one does not sit out its timeout once they came.
    """
    from confluent_kafka import TopicPartition

    if not windows:
        return []
    consumer.assign(  # type: ignore[attr-defined]
        [TopicPartition(topic, p, start) for p, (start, _) in windows.items()]
    )
    next_offset = {p: start for p, (start, _) in windows.items()}
    wanted = key.encode() if key else None
    found: list[ShownMessage] = []
    deadline = time.monotonic() + timeout_s * 2
    while next_offset and (budget := deadline - time.monotonic()) > 0:
        missing = sum(windows[p][1] - n for p, n in next_offset.items())
        batch = consumer.consume(min(missing, BATCH), timeout=min(budget, POLL_S))  # type: ignore[attr-defined]
        for message in batch:
            if message.error() is not None or message.partition() not in next_offset:
                continue
            p, offset = message.partition(), message.offset()
            if offset >= windows[p][1]:
                continue
            next_offset[p] = max(next_offset[p], offset + 1)
            if wanted is None or message.key() == wanted:
                found.append(_shown(message))
        next_offset = _unread(consumer, topic, windows, next_offset)
    return found


def _unread(
    consumer: object, topic: str, windows: dict[int, tuple[int, int]], next_offset: dict[int, int]
) -> dict[int, int]:
    """The partitions whose window is not read yet, with the next offset each still needs.

    The consumer's position counts too: it passes offsets that never reach the application
    (transaction markers, compacted-away records), which would otherwise be waited for.
    """
    from confluent_kafka import TopicPartition

    unread = {p: n for p, n in next_offset.items() if n < windows[p][1]}
    if not unread:
        return {}
    positions = consumer.position(  # type: ignore[attr-defined]
        [TopicPartition(topic, p) for p in unread]
    )
    for tp in positions:
        if tp.offset >= 0:
            unread[tp.partition] = max(unread[tp.partition], tp.offset)
    return {p: n for p, n in unread.items() if n < windows[p][1]}


def _shown(message: object) -> ShownMessage:
    """A consumed message as the browser shows it."""
    _, stamp = message.timestamp()  # type: ignore[attr-defined]
    return shown(
        message.topic(),  # type: ignore[attr-defined]
        message.partition(),  # type: ignore[attr-defined]
        message.offset(),  # type: ignore[attr-defined]
        stamp,
        message.key(),  # type: ignore[attr-defined]
        message.value(),  # type: ignore[attr-defined]
        message.headers(),  # type: ignore[attr-defined]
    )
