"""Shared pieces of the page handlers: the template environment and the render helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from streamguard.backtest.report import TEMPLATES as REPORT_TEMPLATES
from streamguard.console import present
from streamguard.console.auth import ensure_session

TEMPLATES = Path(__file__).with_name("templates")

#: Autoescape everywhere: a merchant called <script>…</script> is shown as text.
#: The backtest report's folder too: the run page draws its charts with the report's macro.
env = Environment(
    loader=FileSystemLoader([TEMPLATES, REPORT_TEMPLATES]),
    autoescape=True,
    undefined=StrictUndefined,
)
env.filters.update(
    money=present.money,
    when=present.when,
    action_class=present.action_class,
    weight=present.weight,
    percent=present.percent,
    known=present.known,
    resolution=lambda value: present.RESOLUTION_LABEL.get(value or "", value or ""),
)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page, with the session's CSRF token and user; a new session cookie when needed."""
    response = HTMLResponse(status_code=status)
    session = ensure_session(request, response)
    monitor = getattr(request.app.state, "monitor", None)
    down = monitor.health.down if monitor is not None else []
    body = env.get_template(name).render(
        csrf=session.csrf, user=session.user, path=request.url.path, down=down, **context
    )
    response.body = response.render(body)
    response.headers["content-length"] = str(len(response.body))
    return response


def query_link(path: str, params: dict[str, Any]) -> str:
    """A URL with the non-empty parameters, for pagination links that keep the filters."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path
