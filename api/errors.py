"""Every refusal of the HTTP API as one JSON shape, and the project's errors as status codes.

    {"error": {"code": "not_found", "message": "unknown tenant 'acme'; ...", "field": "tenant"}}

`field` is there when one field of the request is to blame (a path part, a header, a body field
by its dotted path). Library code raises the project's errors (contract.errors); they are turned
into statuses here and nowhere else. An unexpected exception is logged with its traceback and
answered 500 with no detail: the body never shows a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from client.temporal import temporal_errors
from contract.errors import (
    ConfigurationError,
    Conflict,
    HeartbeatsError,
    InvalidInput,
    NotFound,
    TimedOut,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """What every refused request gets."""

    error: ErrorDetail


class InvalidField(InvalidInput):
    """One field of the request is wrong; `field` names it (`tenant`, `Idempotency-Key`, `value`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class HttpRefusal(Exception):
    """A refusal only HTTP has words for (body too large, rate limit): status, code, message, headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# Most specific first: a store's NotFoundError is an InvalidInput too, and must answer 404.
STATUS_OF_ERROR: list[tuple[type[HeartbeatsError], int, str]] = [
    (Unauthorized, 401, "unauthorized"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Unavailable, 503, "unavailable"),
    (TimedOut, 504, "timed_out"),
    (ConfigurationError, 500, "configuration_error"),
    (InvalidInput, 400, "invalid_input"),
    (HeartbeatsError, 400, "invalid_input"),
]

# Starlette's own refusals (no route, wrong method) in the same shape.
CODE_OF_STATUS = {404: "not_found", 405: "method_not_allowed"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return {"error": detail}


def error_response(status: int, code: str, message: str, *, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def status_and_code(error: HeartbeatsError) -> tuple[int, str]:
    """The HTTP status and error code of a project error (the JSON API's and the dashboard's)."""
    return next((status, code) for kind, status, code in STATUS_OF_ERROR if isinstance(error, kind))


def response_for_error(error: HeartbeatsError) -> JSONResponse:
    status, code = status_and_code(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, code, str(error), field=getattr(error, "field", None), headers=headers)


def validation_message(errors: list[Any]) -> tuple[str, str | None]:
    """(message, field) for pydantic / FastAPI validation errors: the first problem, by field path.

    FastAPI prefixes where the value came from (`body`, `path`, `query`, `header`); the path below
    it is the field's, dotted (`items.0.name`).
    """
    first = errors[0]
    location = [str(part) for part in first.get("loc", ())]
    source = location[0] if location and location[0] in {"body", "path", "query", "header", "cookie"} else None
    field = ".".join(location[1:] if source else location) or None
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        message = "is required"
    return (f"{field}: {message}" if field else message), field


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeartbeatsError)
    async def _project_error(_request: Request, error: HeartbeatsError) -> JSONResponse:
        return response_for_error(error)

    @app.exception_handler(HttpRefusal)
    async def _refusal(_request: Request, refusal: HttpRefusal) -> JSONResponse:
        return error_response(refusal.status, refusal.code, refusal.message, headers=refusal.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        message, field = validation_message(list(error.errors()))
        return error_response(400, "invalid_input", message, field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = CODE_OF_STATUS.get(error.status_code, "http_error")
        message = f"no such endpoint: {request.method} {request.url.path}" if error.status_code == 404 else str(error.detail)
        return error_response(error.status_code, code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
        # A lost connection or a locked file: try again later. Anything else is a bug of ours.
        # Neither answer repeats the driver's message: it can carry SQL and values.
        if isinstance(error, DBAPIError) and (error.connection_invalidated or _is_operational(error)):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                        str(error).splitlines()[0])
            return error_response(503, "unavailable", "the database is unavailable; try again shortly")
        log.error("database error on %s %s", request.method, request.url.path, exc_info=error)
        return error_response(500, "internal_error", "internal server error (logged on the server)")

    @app.exception_handler(RPCError)
    async def _temporal_refused(_request: Request, error: RPCError) -> JSONResponse:
        # A refusal the library let through: client.temporal keeps the one translation into our errors.
        try:
            with temporal_errors():
                raise error
        except HeartbeatsError as translated:
            return response_for_error(translated)


def _is_operational(error: DBAPIError) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, OperationalError | InterfaceError)


class UnexpectedErrors:
    """ASGI middleware: any exception no handler took becomes a logged traceback and a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # The path, never the query string: a login link carries the token there.
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late to answer: the server closes the connection
                raise
            await send_json(send, 500, error_body("internal_error", "internal server error (logged on the server)"))


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Answer from ASGI middleware, before (or instead of) the app."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
