"""The ops console over HTTP: the queue, one import's page and its actions, /healthz, /metrics."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from jinja2 import Environment
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ingest.console_auth import CSRF_FIELD, BasicAuth, CsrfTokens
from ingest.console_pages import (
    BadQuery,
    QueueQuery,
    ThreadView,
    import_context,
    queue_context,
    when,
)
from ingest.metrics import exposition, metrics_registry
from ingest.sla import sla_due
from ingest.usage import UsageError
from notify.render import make_environment
from store.states import Status, TransitionConflict
from store.types import utcnow

if TYPE_CHECKING:
    from ingest.app import Services

log = structlog.get_logger()

HEALTH_TIMEOUT_SECONDS = 5.0
MAX_FORM_BYTES = 64 * 1024
MAX_REASON_CHARS = 2000
DONE = {  # fixed notices after an action: nothing from the request is echoed
    "retry": "Retried: the import is received again and a worker will take it.",
    "release": "Released: a worker will import it, accepting what held it.",
    "reject": "Rejected: the customer gets a reply with your reason.",
}


def make_console(
    services: Services,
    *,
    clock: Callable[[], datetime] = utcnow,
    csrf_key: bytes | None = None,
    thread: ThreadView | None = None,
) -> Starlette:
    """The console's ASGI app on the service's own database and ops actions; `thread` adds
    each import's conversation to its page."""
    console = _Console(services, clock, CsrfTokens(csrf_key), thread)
    routes = [
        Route("/", console.queue),
        Route("/imports/{import_id:int}", console.import_page),
        Route("/imports/{import_id:int}/{action:str}", console.act, methods=["POST"]),
        Route("/healthz", console.healthz),
        Route("/metrics", console.metrics),
    ]
    password = services.settings.ops_password
    middleware = [Middleware(BasicAuth, password=password)] if password else []
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={SQLAlchemyError: console.database_away},
        max_body_size=MAX_FORM_BYTES,
    )


class _Console:
    def __init__(
        self,
        services: Services,
        clock: Callable[[], datetime],
        csrf: CsrfTokens,
        thread: ThreadView | None,
    ) -> None:
        # imported here, not at the top: ops_actions imports ingest.app, which starts us
        from ingest import ops_actions

        self._services, self._clock, self._csrf, self._thread = services, clock, csrf, thread
        self._calendar = services.settings.sla_calendar
        self._actions = ops_actions
        self._environment: Environment = make_environment()
        self._environment.filters["when"] = when
        self._registry = metrics_registry(services.db, self._calendar, clock)
        # warm up now, not on the first page ops open: templates compile, holidays load
        for name in ("queue", "import", "message"):
            self._environment.get_template(f"console/{name}.html")
        sla_due(clock(), self._calendar)

    async def queue(self, request: Request) -> Response:
        try:
            query = QueueQuery.parse(dict(request.query_params))
        except BadQuery as exc:
            return self._message(request, "Not a queue query", str(exc), 400)
        context = await run_in_threadpool(self._read, queue_context, query)
        return self._page(request, "console/queue.html", "Queue", context)

    async def import_page(self, request: Request) -> Response:
        import_id: int = request.path_params["import_id"]
        notice = DONE.get(request.query_params.get("done", ""))
        return await self._import_response(request, import_id, notice=notice)

    async def act(self, request: Request) -> Response:
        import_id: int = request.path_params["import_id"]
        action: str = request.path_params["action"]
        if action not in DONE:
            return self._message(request, "No such action", "retry, release or reject", 404)
        form = await request.form()
        if not self._csrf.accepts(request, str(form.get(CSRF_FIELD, ""))):
            reload = "the form is stale or was not sent from this console: reload the page"
            return self._message(request, "Refused", reload, 403)
        reason = str(form.get("reason", "")).strip()[:MAX_REASON_CHARS]
        if action == "reject" and not reason:
            error = "A rejection needs a reason: it goes to the customer."
            return await self._import_response(request, import_id, error=error, status=400)
        try:
            await run_in_threadpool(self._run_action, action, import_id, reason)
        except UsageError as exc:
            return await self._import_response(request, import_id, error=str(exc), status=409)
        except TransitionConflict:
            moved = "A worker or another person moved this import first: look again."
            return await self._import_response(request, import_id, error=moved, status=409)
        log.info("ops action from the console", action=action, import_id=import_id)
        return RedirectResponse(f"/imports/{import_id}?done={action}", status_code=303)

    async def healthz(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(run_in_threadpool(self._ping), HEALTH_TIMEOUT_SECONDS)
        except (SQLAlchemyError, TimeoutError) as exc:
            log.warning("healthz: the database does not answer", error=type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def metrics(self, request: Request) -> Response:
        body = await run_in_threadpool(exposition, self._registry)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def database_away(self, request: Request, exc: Exception) -> Response:
        log.warning("console: the database does not answer", error=str(exc).splitlines()[0])
        return self._message(request, "The database does not answer", "try again in a moment", 503)

    async def _import_response(
        self,
        request: Request,
        import_id: int,
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        context = await run_in_threadpool(self._read, import_context, import_id, self._thread)
        if context is None:
            return self._message(request, "No such import", f"there is no import {import_id}", 404)
        current = Status(context["d"]["status"])
        context.update(
            notice=notice,
            error=error,
            can_retry=current in self._actions.RETRYABLE,
            can_release=current in self._actions.RELEASABLE,
            can_reject=current in self._actions.REJECTABLE,
        )
        return self._page(request, "console/import.html", f"Import {import_id}", context, status)

    def _read(self, build: Callable[..., Any], *args: Any) -> Any:
        with self._services.db.read() as session:
            return build(session, *args, self._calendar, self._clock())

    def _run_action(self, action: str, import_id: int, reason: str) -> None:
        if action == "reject":
            self._actions.reject(self._services, import_id, reason)
        elif action == "release":
            self._actions.release(self._services, import_id)
        else:
            self._actions.retry(self._services, import_id)

    def _ping(self) -> None:
        with self._services.db.read() as session:
            session.execute(text("SELECT 1"))

    def _message(self, request: Request, title: str, detail: str, status: int) -> Response:
        return self._page(request, "console/message.html", title, {"detail": detail}, status)

    def _page(
        self,
        request: Request,
        template: str,
        title: str,
        context: dict[str, Any],
        status: int = 200,
    ) -> Response:
        token, new = self._csrf.token_for(request)
        nonce = secrets.token_urlsafe(16)
        html = self._environment.get_template(template).render(
            title=title, nonce=nonce, csrf_field=CSRF_FIELD, csrf=token, **context
        )
        response = HTMLResponse(html, status_code=status, headers=_headers(nonce))
        if new:
            self._csrf.set_cookie(response, request, token)
        return response


def _headers(nonce: str) -> dict[str, str]:
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
