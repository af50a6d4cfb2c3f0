"""The pipeline page, the message browser and their API: Kafka-UI's views, from our own code.

Handlers are thin: the snapshot comes from the one cached monitor (console/monitor.py), the
messages from kafka/browse.py. When Kafka is down they still answer and say so.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from streamguard.console import web
from streamguard.console.auth import Caller, api_caller, page_user
from streamguard.console.filters import FilterError, browse_filter
from streamguard.console.monitor import PipelineSnapshot
from streamguard.console.session import Session
from streamguard.domain.messages import ShownMessage
from streamguard.kafka import topics
from streamguard.kafka.admin import KafkaUnavailableError
from streamguard.kafka.browse import browse

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["pipeline"])

_BROWSE_KEYS = ("topic", "partition", "limit", "offset", "since", "key")


@pages.get("/pipeline")
def pipeline_page(request: Request, session: Session = Depends(page_user)) -> Response:
    snapshot = request.app.state.monitor.snapshot()
    return web.render(
        request, "pipeline.html", {"snap": snapshot, "dead_letters_topic": topics.DEAD_LETTERS}
    )


@pages.get("/pipeline/messages")
def messages_page(request: Request, session: Session = Depends(page_user)) -> Response:
    params = {k: request.query_params.get(k, "") for k in _BROWSE_KEYS}
    params["topic"] = params["topic"] or topics.TRANSACTIONS
    context: dict[str, object] = {
        "params": params,
        "topics": topics.ALL,
        "messages": [],
        "error": None,
        "kafka_error": None,
        "show_reason": params["topic"] == topics.DEAD_LETTERS,
    }
    try:
        wanted = browse_filter(**params)
    except FilterError as exc:
        context["error"] = str(exc)
        return web.render(request, "messages.html", context, 422)
    if wanted.topic not in topics.ALL:
        context["error"] = f"no topic {wanted.topic!r} among {', '.join(topics.ALL)}"
        return web.render(request, "messages.html", context, 404)
    try:
        context["messages"] = browse(request.app.state.settings, wanted)
    except KafkaUnavailableError as exc:
        context["kafka_error"] = f"Kafka is down, no message can be read: {exc}"
    return web.render(request, "messages.html", context)


@api.get("/pipeline", response_model=PipelineSnapshot)
def pipeline_status(request: Request, caller: Caller = Depends(api_caller)) -> PipelineSnapshot:
    """Brokers, topics (offsets, messages/s, retention), consumer groups with lag per
    partition (Kafka, PostgreSQL and Flink offsets), dead-letter reasons, and what is down."""
    snapshot: PipelineSnapshot = request.app.state.monitor.snapshot()
    return snapshot


@dataclasses.dataclass(frozen=True)
class MessagesOut:
    """A window of a topic, newest first (oldest first from an offset or a time)."""

    topic: str
    messages: list[ShownMessage]


@api.get("/pipeline/messages", response_model=MessagesOut)
def pipeline_messages(
    request: Request,
    topic: str = Query(..., description="e.g. transactions, dead_letters"),
    partition: str | None = None,
    limit: str | None = Query(None, description="1 to 200 (default 20)"),
    offset: str | None = Query(None, description="start at this offset (needs partition)"),
    since: str | None = Query(None, description="start at this time (ISO 8601, UTC)"),
    key: str | None = Query(None, description="only messages with this key"),
    caller: Caller = Depends(api_caller),
) -> MessagesOut:
    """Read messages of a topic without joining a group; 503 when Kafka is down."""
    try:
        wanted = browse_filter(
            topic=topic, partition=partition, limit=limit, offset=offset, since=since, key=key
        )
    except FilterError as exc:
        raise HTTPException(422, str(exc)) from exc
    if wanted.topic not in topics.ALL:
        raise HTTPException(404, f"no topic {wanted.topic!r} among {', '.join(topics.ALL)}")
    try:
        return MessagesOut(wanted.topic, browse(request.app.state.settings, wanted))
    except KafkaUnavailableError as exc:
        raise HTTPException(503, f"Kafka is down: {exc}") from exc
