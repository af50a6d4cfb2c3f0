"""The console's ASGI app: pages, the REST API, live counts, static files and API docs."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from streamguard.config import Settings
from streamguard.console import api, backtest_routes, pages, pipeline_routes, rules_routes, web
from streamguard.console.auth import LoginRequired
from streamguard.console.backtests import BacktestRunner, RunWatch
from streamguard.console.live import Broadcaster
from streamguard.console.metrics import ConsoleMetrics
from streamguard.console.monitor import PipelineMonitor
from streamguard.console.rules_view import RulesCache

log = logging.getLogger("streamguard.console")

STATIC = Path(__file__).with_name("static")
#: swagger-ui-dist, fetched pinned and checked by scripts/bootstrap.sh (never committed).
SWAGGER = STATIC / "vendor" / "swagger-ui"


def console_secret(settings: Settings) -> bytes:
    """The cookie-signing secret; a random one per process in development, said in the log."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value().encode()
    log.warning(
        "STREAMGUARD_CONSOLE_SECRET is not set: using a random secret for this process "
        "(development only; logins end when the console restarts)"
    )
    return secrets.token_bytes(32)


def create_app(settings: Settings) -> FastAPI:
    """The console for a stack named by `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.broadcaster.start()
        app.state.monitor.start()
        app.state.run_watch.start()
        try:
            await asyncio.to_thread(app.state.backtests.fail_leftovers)
        except psycopg.Error as exc:
            log.warning("could not check for unfinished backtests: %s", exc)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.backtests.stop)
            await app.state.run_watch.stop()
            await app.state.monitor.stop()
            await app.state.broadcaster.stop()

    app = FastAPI(
        title="StreamGuard console API",
        version="1",
        description="Decisions, cases and lists of StreamGuard. Log in at /login or send "
        "`Authorization: Bearer <token>` (`streamguard console add-token NAME`).",
        docs_url=None,  # served below from local files: the default loads swagger-ui from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.secret = console_secret(settings)
    app.state.broadcaster = Broadcaster(settings)
    app.state.monitor = PipelineMonitor(settings)
    app.state.metrics = ConsoleMetrics(settings, app.state.monitor)
    app.state.rules = RulesCache(settings)
    app.state.backtests = BacktestRunner(settings)
    app.state.run_watch = RunWatch(settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(pipeline_routes.api)
    app.include_router(rules_routes.api)
    app.include_router(backtest_routes.api)
    app.include_router(pages.router)
    app.include_router(pipeline_routes.pages)
    app.include_router(rules_routes.pages)
    app.include_router(backtest_routes.pages)
    _add_docs(app)
    _add_metrics(app)
    _add_error_handlers(app)
    return app


def _add_metrics(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        # Open like /api/v1/healthz: aggregate counts only, for a Prometheus on this host.
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _add_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if not (SWAGGER / "swagger-ui-bundle.js").exists():
            return HTMLResponse(
                "<!doctype html><title>API docs</title><p>The interactive docs need "
                "swagger-ui, which <code>scripts/bootstrap.sh</code> fetches; it is not "
                'installed here. The OpenAPI schema is at <a href="/openapi.json">'
                "/openapi.json</a>.</p>"
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="StreamGuard console API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return web.render(
            request, "error.html", {"status": 401, "message": "log in first"}, status=401
        )

    @app.exception_handler(pages.CsrfError)
    def csrf_refused(request: Request, exc: pages.CsrfError) -> Response:
        message = "this form is stale or was not sent by the console (CSRF token missing)"
        return web.render(request, "error.html", {"status": 403, "message": message}, 403)

    @app.exception_handler(RequestValidationError)
    def unprocessable(request: Request, exc: RequestValidationError) -> Response:
        reasons = [
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(reasons), "errors": exc.errors()}, 422)

    @app.exception_handler(psycopg.OperationalError)
    def database_down(request: Request, exc: psycopg.OperationalError) -> Response:
        log.warning("PostgreSQL unreachable: %s", exc)
        message = "PostgreSQL is unreachable; the console will answer again when it is back"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, 503)
        return HTMLResponse(f"<!doctype html><title>503</title><p>{message}</p>", 503)
