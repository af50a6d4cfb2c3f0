"""The pages: thin handlers that parse, call the store, and render a template."""

from __future__ import annotations

import dataclasses
import time

import psycopg
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from streamguard.console import web
from streamguard.console.auth import db, page_user, session_of, set_cookie
from streamguard.console.filters import FilterError, decision_filter, parse_cursor, queue_filter
from streamguard.console.session import Session, csrf_ok, new_session
from streamguard.domain.cases import CaseError, NoCaseError, Resolution
from streamguard.domain.charts import DEFAULT_RANGE, RANGES
from streamguard.domain.paging import encode_cursor
from streamguard.store import cases, console_reads, console_users, lists

router = APIRouter(include_in_schema=False)


class CsrfError(Exception):
    """A form post without this session's CSRF token (HTTP 403)."""


def _form_session(request: Request, csrf: str) -> Session:
    """The logged-in session of a form post whose CSRF token matches."""
    session = page_user(request)
    if not csrf_ok(session, csrf):
        raise CsrfError()
    return session


def _error(request: Request, status: int, message: str) -> Response:
    return web.render(request, "error.html", {"status": status, "message": message}, status)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return web.render(request, "login.html", {"next": _safe_next(next), "failed": False})


def _safe_next(target: str) -> str:
    """Only a path on this site (never //host or a scheme) after login."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login(
    request: Request,
    username: str = Form(...),
    password: str = Form(...),
    csrf: str = Form(""),
    next: str = Form("/"),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    if not csrf_ok(session_of(request), csrf):
        raise CsrfError()
    if not console_users.authenticate(conn, username.strip(), password):
        context = {"next": _safe_next(next), "failed": True}
        return web.render(request, "login.html", context, 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(request, response, new_session(time.time(), username.strip()))
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    _form_session(request, csrf)
    response = RedirectResponse("/login", status_code=303)
    set_cookie(request, response, new_session(time.time()))
    return response


@router.get("/")
def overview(request: Request, session: Session = Depends(page_user)) -> Response:
    broadcaster = request.app.state.broadcaster
    figures = broadcaster.latest or broadcaster.read()
    chosen = request.query_params.get("range", DEFAULT_RANGE)
    context = {
        "shown": figures["shown"],
        "charts": figures.get("charts", {}),
        "chart_range": chosen if chosen in RANGES else DEFAULT_RANGE,
        "chart_ranges": (("15m", "15 min"), ("1h", "1 h"), ("24h", "24 h")),
    }
    return web.render(request, "overview.html", context)


@router.get("/events")
def events(request: Request, session: Session = Depends(page_user)) -> StreamingResponse:
    """Server-sent events of the overview: the one reader's newest figures."""
    return StreamingResponse(
        request.app.state.broadcaster.listen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/decisions")
def decisions(
    request: Request,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    params = {k: request.query_params.get(k, "") for k in _SEARCH_KEYS}
    try:
        filters = decision_filter(**{k: params[k] for k in _SEARCH_KEYS if k != "cursor"})
        after = parse_cursor(params["cursor"])
    except FilterError as exc:
        return web.render(request, "decisions.html", _search_context(params, None, str(exc)), 422)
    page = console_reads.search_decisions(conn, filters, after=after)
    return web.render(request, "decisions.html", _search_context(params, page, None))


_SEARCH_KEYS = ("transaction_id", "account_id", "rule_id", "action", "since", "until", "cursor")


def _search_context(
    params: dict[str, str], page: console_reads.Page | None, error: str | None
) -> dict[str, object]:
    next_link = None
    if page is not None and page.has_more:
        last = page.rows[-1]
        cursor = encode_cursor(last.first_decided_at, last.transaction_id)
        next_link = web.query_link("/decisions", {**params, "cursor": cursor})
    return {
        "params": params,
        "rows": page.rows if page else [],
        "next_link": next_link,
        "first_link": web.query_link("/decisions", {**params, "cursor": ""}),
        "error": error,
        "actions": ("APPROVE", "REVIEW", "BLOCK"),
    }


@router.get("/decisions/{transaction_id}")
def decision_page(
    request: Request,
    transaction_id: str,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    found = console_reads.decision_file(conn, transaction_id)
    if found is None:
        return _error(request, 404, f"no transaction or decision {transaction_id!r}")
    try:
        case: cases.CaseRow | None = cases.get_case(conn, transaction_id)
    except NoCaseError:
        case = None
    context = {
        "file": dataclasses.replace(found, case=case),
        "case": case,
        "resolutions": [r.value for r in Resolution],
    }
    return web.render(request, "decision.html", context)


@router.get("/cases")
def case_queue(
    request: Request,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    keys = ("action", "status", "rule_id", "min_amount", "min_age_min", "cursor")
    params = {k: request.query_params.get(k, "") for k in keys}
    try:
        filters = queue_filter(
            action=params["action"],
            status=params["status"],
            rule_id=params["rule_id"],
            min_amount=params["min_amount"],
            min_age_min=params["min_age_min"],
        )
        after = parse_cursor(params["cursor"])
    except FilterError as exc:
        return _error(request, 422, str(exc))
    page = cases.queue(conn, filters, after=after)
    next_link = None
    if page.has_more:
        last = page.rows[-1]
        cursor = encode_cursor(last.opened_at, last.transaction_id)
        next_link = web.query_link("/cases", {**params, "cursor": cursor})
    context = {
        "params": params,
        "filters": filters,
        "rows": page.rows,
        "counts": cases.counts(conn, filters.action),
        "next_link": next_link,
        "statuses": cases.QUEUE_STATUSES,
    }
    return web.render(request, "cases.html", context)


@router.get("/cases/next")
def next_case(
    request: Request,
    action: str = "REVIEW",
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    found = cases.next_case(conn, session.user or "", action.upper())
    if found is None:
        return RedirectResponse("/cases?status=OPEN", status_code=303)
    return RedirectResponse(f"/decisions/{found}#case", status_code=303)


@router.post("/cases/{transaction_id}/claim")
def claim_case(
    request: Request,
    transaction_id: str,
    csrf: str = Form(""),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    session = _form_session(request, csrf)
    try:
        with conn.transaction():
            cases.claim(conn, transaction_id, session.user or "")
    except NoCaseError as exc:
        return _error(request, 404, str(exc))
    except CaseError as exc:
        return _error(request, 409, str(exc))
    return RedirectResponse(f"/decisions/{transaction_id}#case", status_code=303)


@router.post("/cases/{transaction_id}/resolve")
def resolve_case(
    request: Request,
    transaction_id: str,
    csrf: str = Form(""),
    resolution: str = Form(""),
    note: str = Form(""),
    list_type: str = Form("BLOCK"),
    list_entity: list[str] = Form(default=[]),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    session = _form_session(request, csrf)
    if resolution not in Resolution.__members__:
        return _error(
            request, 422, "choose a resolution: confirmed fraud, false positive or legitimate"
        )
    try:
        with conn.transaction():
            cases.resolve(
                conn,
                transaction_id,
                session.user or "",
                Resolution(resolution),
                note.strip(),
                list_type=list_type,
                list_entities=list_entity,
            )
    except NoCaseError as exc:
        return _error(request, 404, str(exc))
    except CaseError as exc:
        return _error(request, 409, str(exc))
    except ValueError as exc:  # ListError, a note too long
        return _error(request, 422, str(exc))
    return RedirectResponse(f"/decisions/{transaction_id}#case", status_code=303)


@router.get("/lists")
def lists_page(
    request: Request,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    context = {
        "entries": lists.entries(conn),
        "list_types": lists.LIST_TYPES,
        "entity_types": lists.ENTITY_TYPES,
    }
    return web.render(request, "lists.html", context)


@router.post("/lists/add")
def add_to_list(
    request: Request,
    csrf: str = Form(""),
    list_type: str = Form(...),
    entity_type: str = Form(...),
    value: str = Form(...),
    reason: str = Form(""),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    session = _form_session(request, csrf)
    try:
        with conn.transaction():
            lists.add(conn, list_type, entity_type, value, reason.strip(), actor=session.user)
    except lists.ListError as exc:
        return _error(request, 422, str(exc))
    return RedirectResponse("/lists", status_code=303)


@router.post("/lists/remove")
def remove_from_list(
    request: Request,
    csrf: str = Form(""),
    list_type: str = Form(...),
    entity_type: str = Form(...),
    value: str = Form(...),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    session = _form_session(request, csrf)
    try:
        with conn.transaction():
            lists.remove(conn, list_type, entity_type, value, actor=session.user)
    except lists.ListError as exc:
        return _error(request, 422, str(exc))
    return RedirectResponse("/lists", status_code=303)
