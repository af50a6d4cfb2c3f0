"""The rules page and /api/v1/rules: thin handlers over the cached rules view."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from streamguard.console import web
from streamguard.console.auth import Caller, api_caller, db, page_user
from streamguard.console.rules_view import RulesView
from streamguard.console.session import Session

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["rules"])


@pages.get("/rules")
def rules_page(
    request: Request,
    session: Session = Depends(page_user),
    conn: psycopg.Connection = Depends(db),
) -> Response:
    view = request.app.state.rules.view(conn)
    return web.render(request, "rules.html", {"view": view})


@api.get("/rules", response_model=RulesView)
def rules(
    request: Request,
    caller: Caller = Depends(api_caller),
    conn: psycopg.Connection = Depends(db),
) -> RulesView:
    """Each rule with its parameters, alerts (total, per hour over 24 h) and precision from
    analysts' resolutions and from the generator's labels (null where nothing was judged)."""
    view: RulesView = request.app.state.rules.view(conn)
    return view
