"""The backtests page, a run's page with its pushed state, and /api/v1/backtests.

Thin handlers: parse, then `console/backtests.py` checks and stores the request and starts its
worker; the result is read back from `backtest_runs` and laid out by `backtest/report.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from streamguard.backtest import report
from streamguard.backtest.request import RequestError, parse_lines, parse_moment
from streamguard.console import web
from streamguard.console.auth import Caller, api_caller, api_writer, db, page_user
from streamguard.console.backtest_schemas import BacktestIn, BacktestRunOut
from streamguard.console.backtests import request_run, run_state
from streamguard.console.pages import CsrfError
from streamguard.console.session import Session, csrf_ok
from streamguard.store import backtest_runs
from streamguard.store.backtest_runs import ActiveRunError, BacktestRun
from streamguard.store.db import connect_console

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["backtests"])

EXAMPLE_OVERRIDES = "HIGH_AMOUNT.threshold_brl=5000.00"


def _form_defaults(now: datetime) -> dict[str, str]:
    """Yesterday (UTC), as the form first shows it."""
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "start": (today - timedelta(days=1)).isoformat(),
        "end": today.isoformat(),
        "overrides": "",
    }


def _list_context(
    conn: psycopg.Connection, before: int | None, form: dict[str, str], error: str | None
) -> dict[str, Any]:
    runs = backtest_runs.recent(conn, before=before, limit=backtest_runs.PAGE + 1)
    shown = runs[: backtest_runs.PAGE]
    older = f"/backtests?before={shown[-1].id}" if len(runs) > backtest_runs.PAGE else None
    return {
        "runs": shown,
        "older_link": older,
        "form": form,
        "error": error,
        "example": EXAMPLE_OVERRIDES,
    }


@pages.get("/backtests")
def backtests_page(
    request: Request,
    before: int | None = None,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    context = _list_context(conn, before, _form_defaults(datetime.now(timezone.utc)), None)
    return web.render(request, "backtests.html", context)


@pages.post("/backtests")
def start_backtest(
    request: Request,
    csrf: str = Form(""),
    start: str = Form(""),
    end: str = Form(""),
    overrides: str = Form(""),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    session = page_user(request)
    if not csrf_ok(session, csrf):
        raise CsrfError()
    form = {"start": start, "end": end, "overrides": overrides}
    try:
        run_id = request_run(
            conn,
            request.app.state.settings,
            session.user or "",
            parse_moment(start),
            parse_moment(end),
            parse_lines(overrides),
        )
    except RequestError as exc:
        conn.rollback()
        return web.render(request, "backtests.html", _list_context(conn, None, form, str(exc)), 422)
    except ActiveRunError as exc:
        conn.rollback()
        return web.render(request, "backtests.html", _list_context(conn, None, form, str(exc)), 409)
    request.app.state.backtests.start(run_id)
    return RedirectResponse(f"/backtests/{run_id}", status_code=303)


def run_context(run: BacktestRun) -> dict[str, Any]:
    """What the run page shows: the request, its state, and the comparison once done."""
    state = run_state(run, datetime.now(timezone.utc))
    shown = report.context(run.result, all_in="the API") if run.result else None
    return {"run": run, "state": state, "shown": shown}


@pages.get("/backtests/{run_id}")
def backtest_page(
    request: Request,
    run_id: int,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    run = backtest_runs.get(conn, run_id)
    if run is None:
        message = f"no backtest #{run_id}"
        return web.render(request, "error.html", {"status": 404, "message": message}, 404)
    return web.render(request, "backtest.html", run_context(run))


@pages.get("/backtests/{run_id}/events")
def backtest_events(
    request: Request, run_id: int, session: Session = Depends(page_user)
) -> StreamingResponse:
    """Server-sent events of one run's state, from the one reader, until it is finished."""
    with connect_console(request.app.state.settings) as conn:  # not held while streaming
        if not backtest_runs.states(conn, [run_id]):
            raise HTTPException(404, f"no backtest #{run_id}")
    return StreamingResponse(
        request.app.state.run_watch.listen(run_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@api.post("/backtests", response_model=BacktestRunOut, status_code=202)
def post_backtest(
    request: Request,
    body: BacktestIn,
    caller: Caller = Depends(api_writer),
    conn: psycopg.Connection = Depends(db),
) -> JSONResponse:
    """Start a backtest of the candidate's overrides against the live catalog (202; poll
    GET /api/v1/backtests/{id}). 422 with the reason for a bad period or override, before
    anything runs; 409 while another backtest is queued or running (one at a time)."""
    try:
        run_id = request_run(
            conn, request.app.state.settings, caller.user, body.from_, body.to, body.overrides
        )
    except RequestError as exc:
        raise HTTPException(422, str(exc)) from exc
    except ActiveRunError as exc:
        raise HTTPException(409, str(exc)) from exc
    request.app.state.backtests.start(run_id)
    run = backtest_runs.get(conn, run_id)
    out = BacktestRunOut.model_validate(run)
    return JSONResponse(
        out.model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": f"/api/v1/backtests/{run_id}"},
    )


@api.get("/backtests", response_model=list[BacktestRunOut])
def list_backtests(
    before: int | None = None,
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> list[BacktestRunOut]:
    """Runs newest first, without their results (`before`: the last id of the previous page)."""
    return [BacktestRunOut.model_validate(run) for run in backtest_runs.recent(conn, before=before)]


@api.get("/backtests/{run_id}", response_model=BacktestRunOut)
def get_backtest(
    run_id: int,
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> BacktestRunOut:
    """One run: its state, and once done the comparison of the two catalogs."""
    run = backtest_runs.get(conn, run_id)
    if run is None:
        raise HTTPException(404, f"no backtest #{run_id}")
    return BacktestRunOut.model_validate(run)
