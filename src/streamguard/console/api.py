"""The REST API under /api/v1: the same store calls as the pages, as JSON.

Bad input gets a 422 with the reason, an unknown id a 404, a case another analyst holds a 409.
Every route needs a bearer token or a logged-in session; writes through a session also need
the X-CSRF-Token header.
"""

from __future__ import annotations

import dataclasses

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from streamguard.console.auth import Caller, api_caller, api_writer, db
from streamguard.console.filters import FilterError, decision_filter, parse_cursor, queue_filter
from streamguard.console.schemas import (
    CaseOut,
    CasePage,
    ClaimOut,
    DecisionFileOut,
    DecisionOut,
    DecisionPage,
    ListChangeOut,
    ListEntryIn,
    ListEntryOut,
    ResolveIn,
    ResolveOut,
)
from streamguard.domain.cases import CaseError, NoCaseError
from streamguard.domain.paging import encode_cursor
from streamguard.store import cases, console_reads, lists

router = APIRouter(prefix="/api/v1")


def _unprocessable(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/healthz", tags=["status"])
def healthz(conn: psycopg.Connection = Depends(db)) -> dict[str, str]:
    """200 when the console answers and reaches PostgreSQL as its own role."""
    conn.execute("SELECT 1 FROM decisions LIMIT 1")
    return {"status": "ok", "database": "ok"}


@router.get("/decisions", response_model=DecisionPage, tags=["decisions"])
def search_decisions(
    transaction_id: str | None = None,
    account_id: str | None = None,
    rule_id: str | None = Query(None, description="e.g. HIGH_AMOUNT"),
    action: str | None = Query(None, description="APPROVE, REVIEW or BLOCK"),
    since: str | None = Query(None, description="first decided at or after (ISO 8601, UTC)"),
    until: str | None = Query(None, description="first decided before (ISO 8601, UTC)"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=console_reads.MAX_PAGE),
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> DecisionPage:
    """Decisions newest first (by their first decision), keyset-paginated."""
    try:
        filters = decision_filter(
            transaction_id=transaction_id,
            account_id=account_id,
            rule_id=rule_id,
            action=action,
            since=since,
            until=until,
        )
        after = parse_cursor(cursor)
    except FilterError as exc:
        raise _unprocessable(exc) from exc
    page = console_reads.search_decisions(conn, filters, after=after, limit=limit)
    last = page.rows[-1] if page.has_more else None
    return DecisionPage(
        items=[DecisionOut.model_validate(row) for row in page.rows],
        next_cursor=encode_cursor(last.first_decided_at, last.transaction_id) if last else None,
    )


@router.get("/decisions/{transaction_id}", response_model=DecisionFileOut, tags=["decisions"])
def get_decision(
    transaction_id: str,
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> DecisionFileOut:
    """The transaction, its decision with weighted reasons, alerts, history and lists."""
    found = console_reads.decision_file(conn, transaction_id)
    if found is None:
        raise HTTPException(404, f"no transaction or decision {transaction_id!r}")
    try:
        case = cases.get_case(conn, transaction_id)
    except NoCaseError:
        case = None
    return DecisionFileOut.model_validate(dataclasses.replace(found, case=case))


@router.get("/cases", response_model=CasePage, tags=["cases"])
def list_cases(
    action: str | None = Query(None, description="REVIEW (default) or BLOCK"),
    status: str | None = Query(None, description="UNRESOLVED (default), OPEN, CLAIMED, RESOLVED"),
    rule_id: str | None = None,
    min_amount: str | None = Query(None, description="least amount, in reais"),
    min_age_min: str | None = Query(None, description="opened at least this many minutes ago"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=console_reads.MAX_PAGE),
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> CasePage:
    """The review queue, oldest first, with the counts by status."""
    try:
        filters = queue_filter(
            action=action,
            status=status,
            rule_id=rule_id,
            min_amount=min_amount,
            min_age_min=min_age_min,
        )
        after = parse_cursor(cursor)
    except FilterError as exc:
        raise _unprocessable(exc) from exc
    page = cases.queue(conn, filters, after=after, limit=limit)
    last = page.rows[-1] if page.has_more else None
    return CasePage(
        items=[CaseOut.model_validate(row) for row in page.rows],
        next_cursor=encode_cursor(last.opened_at, last.transaction_id) if last else None,
        counts=cases.counts(conn, filters.action),
    )


@router.get("/cases/{transaction_id}", response_model=CaseOut, tags=["cases"])
def get_case(
    transaction_id: str,
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> CaseOut:
    """One case."""
    try:
        return CaseOut.model_validate(cases.get_case(conn, transaction_id))
    except NoCaseError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.post("/cases/{transaction_id}/claim", response_model=ClaimOut, tags=["cases"])
def claim_case(
    transaction_id: str,
    caller: Caller = Depends(api_writer),
    conn: psycopg.Connection = Depends(db),
) -> ClaimOut:
    """Claim a case; 409 when another analyst holds it or it is resolved."""
    try:
        with conn.transaction():
            new = cases.claim(conn, transaction_id, caller.user)
        return ClaimOut(case=CaseOut.model_validate(cases.get_case(conn, transaction_id)), new=new)
    except NoCaseError as exc:
        raise HTTPException(404, str(exc)) from exc
    except CaseError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/cases/{transaction_id}/resolve", response_model=ResolveOut, tags=["cases"])
def resolve_case(
    transaction_id: str,
    body: ResolveIn,
    caller: Caller = Depends(api_writer),
    conn: psycopg.Connection = Depends(db),
) -> ResolveOut:
    """Resolve a case (claiming it if open), optionally listing its account, merchant, device."""
    try:
        with conn.transaction():
            listed = cases.resolve(
                conn,
                transaction_id,
                caller.user,
                body.resolution,
                body.note.strip(),
                list_type=body.list_type,
                list_entities=body.list_entities,
            )
        case = CaseOut.model_validate(cases.get_case(conn, transaction_id))
    except NoCaseError as exc:
        raise HTTPException(404, str(exc)) from exc
    except CaseError as exc:
        raise HTTPException(409, str(exc)) from exc
    except ValueError as exc:
        raise _unprocessable(exc) from exc
    return ResolveOut(case=case, listed=listed)


@router.get("/lists", response_model=list[ListEntryOut], tags=["lists"])
def get_lists(
    list_type: str | None = Query(None, description="BLOCK or ALLOW (default: both)"),
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> list[ListEntryOut]:
    """Every list entry."""
    try:
        return [ListEntryOut.model_validate(e) for e in lists.entries(conn, list_type)]
    except lists.ListError as exc:
        raise _unprocessable(exc) from exc


@router.post("/lists", response_model=ListChangeOut, status_code=201, tags=["lists"])
def add_list_entry(
    body: ListEntryIn,
    caller: Caller = Depends(api_writer),
    conn: psycopg.Connection = Depends(db),
) -> JSONResponse:
    """Put an entity on a list (201), or update its reason (200)."""
    try:
        with conn.transaction():
            new = lists.add(
                conn, body.list_type, body.entity_type, body.value, body.reason, actor=caller.user
            )
    except lists.ListError as exc:
        raise _unprocessable(exc) from exc
    return JSONResponse({"changed": new}, status_code=201 if new else 200)


@router.delete(
    "/lists/{list_type}/{entity_type}/{value}", response_model=ListChangeOut, tags=["lists"]
)
def remove_list_entry(
    list_type: str,
    entity_type: str,
    value: str,
    caller: Caller = Depends(api_writer),
    conn: psycopg.Connection = Depends(db),
) -> ListChangeOut:
    """Take an entity off a list; 404 when it was not there."""
    try:
        with conn.transaction():
            removed = lists.remove(conn, list_type, entity_type, value, actor=caller.user)
    except lists.ListError as exc:
        raise _unprocessable(exc) from exc
    if not removed:
        raise HTTPException(404, f"{entity_type} {value} is not on the {list_type} list")
    return ListChangeOut(changed=True)
