"""Every kind of failure a handler can meet, answered in the API's one JSON shape with its status:
the project's errors by class, Temporal's refusals, database failures, and bugs (a logged
traceback, a bare 500). Each case is a route added to the real app that raises a real exception."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from temporalio.service import RPCError, RPCStatusCode

from api.app import build_context, create_app
from api.backends import Backends
from api.errors import validation_message
from api.settings import load_settings
from contract.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unauthorized, Unavailable
from store import NotFoundError, StoreError, open_store
from tests.api_env import AUTH, TOKEN


def _raise(error: BaseException) -> Callable[[], None]:
    def route() -> None:
        raise error

    return route


FAILURES: dict[str, tuple[BaseException, int, str]] = {
    "invalid": (InvalidInput("limit must be positive"), 400, "invalid_input"),
    "store-invalid": (StoreError("tenant id must not be empty"), 400, "invalid_input"),
    "unauthorized": (Unauthorized("webhook signature refused"), 401, "unauthorized"),
    "not-found": (NotFound("unknown tenant 'globex'"), 404, "not_found"),
    # A store NotFoundError is an InvalidInput as well: the more specific class decides.
    "store-not-found": (NotFoundError("no such app"), 404, "not_found"),
    "conflict": (Conflict("event id reused"), 409, "conflict"),
    "unavailable": (Unavailable("cannot reach Temporal"), 503, "unavailable"),
    "configuration": (ConfigurationError("HEARTBEATS_X: bad"), 500, "configuration_error"),
    "temporal-not-found": (RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""), 404, "not_found"),
    "temporal-down": (RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""), 503, "unavailable"),
    "database-down": (OperationalError("SELECT secret_column FROM t", {"p": "hunter2"},
                                       Exception("server closed the connection")), 503, "unavailable"),
    "database-bug": (IntegrityError("INSERT INTO t VALUES (:p)", {"p": "hunter2"}, Exception("duplicate key")),
                     500, "internal_error"),
    "bug": (ZeroDivisionError("division by zero"), 500, "internal_error"),
}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    app = create_app(build_context(load_settings(token=TOKEN, token_file=tmp_path / "t"),
                                   backends=Backends(store=store)))
    for name, (error, _, _) in FAILURES.items():
        app.add_api_route(f"/v1/fail/{name}", _raise(error))

    def typed(limit: int) -> dict:  # FastAPI's own parameter checks
        return {"limit": limit}

    app.add_api_route("/v1/typed", typed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://testserver") as client:
        yield client
    await store.close()


@pytest.mark.parametrize("name", FAILURES)
async def test_each_failure_has_its_status_and_the_one_shape(http: httpx.AsyncClient, name: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    error, status, code = FAILURES[name]
    with caplog.at_level(logging.WARNING):
        response = await http.get(f"/v1/fail/{name}", params={"token": "query-secret"}, headers=AUTH)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    # No traceback, SQL or bound value in an answer; the query string is kept out of the log.
    for leak in ("Traceback", "hunter2", "SELECT", "INSERT", "division by zero"):
        assert leak not in response.text
    assert "query-secret" not in caplog.text
    if isinstance(error, InvalidInput | Unauthorized | NotFound | Conflict | Unavailable | ConfigurationError):
        assert body["error"]["message"] == str(error)
    if code == "internal_error":
        assert body["error"]["message"] == "internal server error (logged on the server)"
        assert f"/v1/fail/{name}" in caplog.text and "Traceback" in caplog.text


async def test_an_unauthorized_answer_names_the_scheme(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/fail/unauthorized", headers=AUTH)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_fastapis_own_checks_answer_in_the_same_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/typed", params={"limit": "ten"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_input", "field": "limit",
        "message": "limit: Input should be a valid integer, unable to parse string as an integer"}
    response = await http.get("/v1/typed")
    assert response.json()["error"]["message"] == "limit: is required"


def test_validation_messages_name_the_field_by_its_path() -> None:
    errors = [{"type": "missing", "loc": ("body", "items", 0, "name"), "msg": "Field required"}]
    assert validation_message(errors) == ("items.0.name: is required", "items.0.name")
    errors = [{"type": "string_type", "loc": ("query", "limit"), "msg": "Input should be a valid string"}]
    assert validation_message(errors) == ("limit: Input should be a valid string", "limit")
    errors = [{"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error",
               "ctx": {"error": "Expecting value"}}]
    assert validation_message(errors) == ("the body is not valid JSON: Expecting value", None)
