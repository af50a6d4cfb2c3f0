"""Who is asking: a session cookie (pages, and the API from a browser) or a bearer token (API).

Writes through a session need its CSRF token (a form field, or the X-CSRF-Token header for
the API); a bearer token is never sent by a browser on its own, so it needs none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from fastapi import Depends, HTTPException, Request, Response

from streamguard.console.session import COOKIE, LIFETIME_S, Session, new_session, sign, unsign
from streamguard.store import console_users
from streamguard.store.db import connect_console

CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """A page needs a logged-in analyst: the handler redirects to the login page."""


@dataclass(frozen=True)
class Caller:
    """An authenticated analyst, and how they proved it."""

    user: str
    via_token: bool
    session: Session | None


def db(request: Request) -> Iterator[psycopg.Connection]:
    """A connection as the console's role for one request; the caller owns its transaction."""
    conn = connect_console(request.app.state.settings)
    try:
        yield conn
    finally:
        conn.close()


def session_of(request: Request) -> Session | None:
    """The request's valid session, if any."""
    return unsign(request.cookies.get(COOKIE), request.app.state.secret, time.time())


def ensure_session(request: Request, response: Response) -> Session:
    """The request's session, or a new anonymous one set on the response (for its CSRF token)."""
    session = session_of(request)
    if session is None:
        session = new_session(time.time())
        set_cookie(request, response, session)
    return session


def set_cookie(request: Request, response: Response, session: Session) -> None:
    """Store the session in its signed cookie: HttpOnly, SameSite=Lax."""
    response.set_cookie(
        COOKIE,
        sign(session, request.app.state.secret),
        max_age=LIFETIME_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_caller(request: Request, conn: psycopg.Connection = Depends(db)) -> Caller:
    """The API's caller: a bearer token or a logged-in session; 401 otherwise."""
    token = _bearer(request)
    if token is not None:
        user = console_users.token_user(conn, token)
        conn.rollback()
        if user is None:
            raise HTTPException(401, "unknown or disabled API token")
        return Caller(user, True, None)
    session = session_of(request)
    if session is None or session.user is None:
        raise HTTPException(
            401,
            "log in at /login, or send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(session.user, False, session)


def api_writer(request: Request, caller: Caller = Depends(api_caller)) -> Caller:
    """An API caller allowed to write: a token, or a session that sent its CSRF token."""
    if caller.via_token:
        return caller
    from streamguard.console.session import csrf_ok

    if not csrf_ok(caller.session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"a write with the session cookie needs the {CSRF_HEADER} header")
    return caller


def page_user(request: Request) -> Session:
    """A page's logged-in session; LoginRequired (a redirect to /login) otherwise."""
    session = session_of(request)
    if session is None or session.user is None:
        raise LoginRequired()
    return session
