"""Keyset pagination cursors: the last row's (time, id), opaque to the client."""

from __future__ import annotations

import base64
import json
from datetime import datetime


class CursorError(ValueError):
    """A cursor that this server did not make."""


def encode_cursor(at: datetime, key: str) -> str:
    """An opaque cursor after the row (at, key)."""
    raw = json.dumps([at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (at, key) of a cursor; CursorError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError) as exc:
        raise CursorError("the cursor is not valid; start again from the first page") from exc
    if moment.tzinfo is None or not isinstance(key, str):
        raise CursorError("the cursor is not valid; start again from the first page")
    return moment, key
