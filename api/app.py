"""The one ASGI app: the JSON API under `/v1/`, its OpenAPI description at `/openapi.json`, and the
operator dashboard at `/`.

    context = build_context(load_settings())
    app = create_app(context)      # run it with api.server (heartbeats serve, heartbeats demo)

Every request passes, outermost first: the catch-all for unexpected errors (a logged traceback,
a bare 500), the body limit (413 before any handler runs), then the routes. Each `/v1/` route
checks the caller first (401), then the tenant and app in its path (400), then the app's rate
limit (429), and only then reads its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.exc import SQLAlchemyError

from api import budgets, dashboard, handlers, health, ingress, machines, operations, runtime_tasks, shadow
from api.auth import require_token
from api.backends import Backends
from api.body_limit import BodyLimit
from api.context import ApiContext
from api.errors import ErrorBody, UnexpectedErrors, install_error_handlers
from api.rate_limit import RateLimiter
from api.settings import MAX_BODY_BYTES, ApiSettings
from api.token import ApiToken, resolve_token
from store.types import utcnow

log = logging.getLogger(__name__)

# Kept answers expire after 24 hours; a reclaimed key replaces its expired answer at once, and
# this sweep deletes the others.
PURGE_SECONDS = 60 * 60

API_DESCRIPTION = """\
The HTTP API of agent-heartbeats. Every call needs `Authorization: Bearer <token>`; the event
endpoint also takes a Standard Webhooks signature made with the app's secret instead.
Errors are `{"error": {"code": ..., "message": ..., "field": ...}}`.
"""

# The refusals every `/v1/` route can answer, for the OpenAPI description.
COMMON_ERRORS = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed or invalid request; `field` names the culprit"),
        (401, "Missing or invalid credentials"),
        (413, "Request body over 256 KiB"),
        (429, "Rate limit of the app reached; see Retry-After"),
        (503, "Temporal or the database is unavailable"),
    )
}


def build_context(settings: ApiSettings, *, token: ApiToken | None = None, backends: Backends | None = None) -> ApiContext:
    """The server's shared state: the token (resolved now unless given), the store and Temporal
    (opened when the app starts, unless given), the rate limiter and the dashboard sessions."""
    return ApiContext(
        settings=settings,
        token=token or resolve_token(settings),
        backends=backends or Backends(),
        limiter=RateLimiter(rate=settings.rate_per_second, burst=settings.rate_burst),
        handler_limiter=RateLimiter(rate=settings.handler_rate_per_second, burst=settings.handler_rate_burst),
    )


def create_app(context: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await context.backends.open()
        purging = asyncio.create_task(purge_expired_answers(context.backends))
        try:
            yield
        finally:
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
            await context.backends.close()

    app = FastAPI(
        title="agent-heartbeats",
        version=_package_version(),
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context
    install_error_handlers(app)

    v1 = APIRouter(prefix="/v1", responses=COMMON_ERRORS)
    v1.include_router(health.router, dependencies=[Depends(require_token)])
    v1.include_router(ingress.router)
    v1.include_router(operations.router)
    v1.include_router(runtime_tasks.router)
    v1.include_router(handlers.router)
    v1.include_router(budgets.router)
    v1.include_router(shadow.router)
    v1.include_router(machines.router)
    app.include_router(v1)
    app.include_router(dashboard.router)
    dashboard.install_dashboard_handlers(app)

    # Added last = runs first.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(UnexpectedErrors)
    return app


async def purge_expired_answers(backends: Backends, *, every: float = PURGE_SECONDS) -> None:
    """Delete kept `Idempotency-Key` answers past their 24 hours: at start, then every `every` seconds."""
    while True:
        try:
            purged = await backends.store.idempotency.purge_expired(now=utcnow())
            if purged:
                log.info("deleted %d expired Idempotency-Key answers", purged)
        except (SQLAlchemyError, OSError) as exc:  # the database is away: try again next time
            log.warning("could not delete expired Idempotency-Key answers: %s", str(exc).splitlines()[0])
        await asyncio.sleep(every)


def _package_version() -> str:
    try:
        return version("agent-heartbeats")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0"
