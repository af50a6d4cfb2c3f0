"""Signed session cookies: who is logged in and the session's CSRF token. No I/O.

The cookie is `base64(json).base64(hmac-sha256)`: the browser can read it but not forge or
alter it. Every session, logged in or not, carries a CSRF token that each form posts back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "streamguard_session"
LIFETIME_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    """The signed contents of the cookie."""

    user: str | None
    csrf: str
    expires: int


def new_session(now: float, user: str | None = None) -> Session:
    """A fresh session (a new CSRF token each time: logging in rotates it)."""
    return Session(user, secrets.token_urlsafe(32), int(now) + LIFETIME_S)


def _mac(payload: bytes, secret: bytes) -> str:
    digest = hmac.new(secret, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def sign(session: Session, secret: bytes) -> str:
    """The cookie value of a session."""
    body = json.dumps([session.user, session.csrf, session.expires], separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).rstrip(b"=")
    return f"{payload.decode('ascii')}.{_mac(payload, secret)}"


def unsign(value: str | None, secret: bytes, now: float) -> Session | None:
    """The session of a cookie value, or None if it is missing, forged, altered or expired."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(payload.encode("ascii", "replace"), secret)):
        return None
    try:
        user, csrf, expires = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (ValueError, TypeError):
        return None
    if not isinstance(csrf, str) or not isinstance(expires, int) or expires <= now:
        return None
    return Session(user if isinstance(user, str) else None, csrf, expires)


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    """True when a form's (or header's) token is this session's."""
    return bool(session and submitted and hmac.compare_digest(session.csrf, submitted))
