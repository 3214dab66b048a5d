"""The HTTP API's edges, in process over a real SQLite store: authentication, the error shape,
malformed and invalid bodies, unknown routes, the body limit, the rate limit, OpenAPI and the
dashboard's sign-in. Nothing here reaches the ingress library: every request is refused (or,
for the rate limit, spends its allowance on a refusal) before a handler would call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.dashboard.layout import csrf_token
from api.sessions import SESSION_COOKIE
from api.settings import MAX_BODY_BYTES
from store import Store, open_store
from store.types import utcnow
from tests.api_env import AUTH, TOKEN, ApiEnv, api_env

METRIC = "/v1/tenants/acme/apps/crm/metrics/error_rate"
EVENT = "/v1/tenants/acme/apps/crm/events/case.created"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def env(sqlite_store: Store, tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(sqlite_store, tmp_path) as opened:
        yield opened


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


async def nothing_recorded(store: Store) -> bool:
    events = await store.events.bodies(tenant="acme", app="crm", event_ids=["x"])
    return events == {} and await store.metrics.last(tenant="acme", app="crm", metric="error_rate") is None


# ------------------------------------------------------------------------------ authentication


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
])
async def test_v1_calls_without_the_right_token_get_401(env: ApiEnv, headers: dict) -> None:
    for method, path in (("GET", "/v1/health"), ("POST", METRIC), ("POST", EVENT)):
        response = await env.http.request(method, path, headers=headers, json={"value": 1})
        assert response.status_code == 401, (method, path, response.text)
        assert error_of(response)["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert await nothing_recorded(env.store)


async def test_health_answers_with_the_token(env: ApiEnv) -> None:
    response = await env.http.get("/v1/health", headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"ok": True})


async def test_authentication_comes_before_reading_the_body_and_the_path(env: ApiEnv) -> None:
    for path in (METRIC, EVENT, "/v1/tenants/Acme/apps/crm/metrics/x", "/v1/tenants/Acme/apps/crm/events/x"):
        response = await env.http.post(path, content=b"{not json")
        assert response.status_code == 401, path


async def test_the_dashboard_cookie_does_not_open_the_api(env: ApiEnv) -> None:
    signed_in = await env.http.get("/login", params={"token": TOKEN})
    assert signed_in.status_code == 303
    assert env.http.cookies[SESSION_COOKIE]  # the client keeps the cookie and sends it from now on
    response = await env.http.get("/v1/health")
    assert response.status_code == 401


# ------------------------------------------------------------------------------ malformed and invalid


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"value": 1', "not valid JSON: Expecting ',' delimiter (line 1, column 12)"),
    (b"", "body is empty"),
    (b'{"value": NaN}', "NaN is not a JSON number"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object (got an array)"),
    (b'"high"', "must be a JSON object (got a string)"),
])
async def test_malformed_bodies_get_400_saying_what_is_wrong(env: ApiEnv, body: bytes, expected: str) -> None:
    response = await env.http.post(METRIC, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert expected in error["message"]
    assert await nothing_recorded(env.store)


@pytest.mark.parametrize(("body", "field", "expected"), [
    ({}, "value", "value: is required"),
    ({"value": "high"}, "value", "value: Input should be a valid number"),
    ({"value": True}, "value", "value: Input should be a valid number"),
    ({"value": None}, "value", "value: Input should be a valid number"),
    ({"value": 1e400}, "value", "value: Input should be a finite number"),
    ({"value": 1, "unit": "%"}, "unit", "unit: Extra inputs are not permitted"),
])
async def test_invalid_fields_get_400_naming_the_field(env: ApiEnv, body: dict, field: str, expected: str) -> None:
    # 1e400 is infinite once parsed: JSON allows the literal, the value check does not.
    content = b'{"value": 1e400}' if body == {"value": 1e400} else None
    response = await env.http.post(METRIC, headers=AUTH, **({"content": content} if content else {"json": body}))
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"], error["message"]) == ("invalid_input", field, expected)
    assert await nothing_recorded(env.store)


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/tenants/Acme/apps/crm/metrics/error_rate", "tenant"),
    ("/v1/tenants/acme/apps/9crm/metrics/error_rate", "app"),
    ("/v1/tenants/acme/apps/c:rm/events/case.created", "app"),
    (f"/v1/tenants/{'a' * 64}/apps/crm/events/case.created", "tenant"),
])
async def test_ids_in_the_path_are_checked_naming_the_part(env: ApiEnv, path: str, field: str) -> None:
    response = await env.http.post(path, headers=AUTH, json={"value": 1})
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: must be")


async def test_a_bad_idempotency_key_gets_400_naming_the_header(env: ApiEnv) -> None:
    response = await env.http.post(METRIC, headers={**AUTH, "Idempotency-Key": "k" * 201}, json={"value": 1})
    assert response.status_code == 400
    assert error_of(response)["field"] == "Idempotency-Key"


# ------------------------------------------------------------------------------ routes


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v1/nothing-here", 404, "not_found"),
    ("GET", "/v1/tenants/acme/apps/crm/metrics", 404, "not_found"),
    ("DELETE", "/v1/health", 405, "method_not_allowed"),
    ("GET", METRIC, 405, "method_not_allowed"),
])
async def test_unknown_routes_and_methods_get_json_errors(env: ApiEnv, method: str, path: str, status: int,
                                                           code: str) -> None:
    response = await env.http.request(method, path, headers=AUTH)
    assert response.status_code == status
    assert error_of(response)["code"] == code


async def test_openapi_is_served_and_lists_the_endpoints(env: ApiEnv) -> None:
    response = await env.http.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert {"/v1/health", "/v1/tenants/{tenant}/apps/{app}/events/{event}",
            "/v1/tenants/{tenant}/apps/{app}/metrics/{metric}"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    metric = spec["paths"]["/v1/tenants/{tenant}/apps/{app}/metrics/{metric}"]["post"]
    assert metric["requestBody"]["content"]["application/json"]["schema"]["required"] == ["value"]
    assert {"400", "401", "404", "409", "413", "429"} <= set(metric["responses"])
    # The dashboard's pages are not part of the API.
    assert not any(path in spec["paths"] for path in ("/", "/login", "/logout"))


# ------------------------------------------------------------------------------ body limit


async def test_a_body_over_256_kib_is_refused_by_its_length(env: ApiEnv) -> None:
    response = await env.http.post(METRIC, headers=AUTH, content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert await nothing_recorded(env.store)


async def test_a_body_of_256_kib_exactly_is_read(env: ApiEnv) -> None:
    body = b'{"value": 1}'
    response = await env.http.post(METRIC, headers=AUTH, content=body + b" " * (MAX_BODY_BYTES - len(body) - 1) + b"x")
    assert response.status_code == 400  # read, and found not to be JSON: the limit let it through
    assert "not valid JSON" in error_of(response)["message"]


async def test_a_chunked_body_over_256_kib_is_refused_as_it_arrives(env: ApiEnv) -> None:
    async def chunks():
        for _ in range(4):
            yield b" " * (64 * 1024)
        yield b"{}"

    response = await env.http.post(METRIC, headers=AUTH, content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert await nothing_recorded(env.store)


async def test_an_unreadable_content_length_gets_400(env: ApiEnv) -> None:
    response = await env.http.post(METRIC, headers={**AUTH, "Content-Length": "lots"}, content=b"{}")
    assert response.status_code == 400
    assert error_of(response)["field"] == "Content-Length"


# ------------------------------------------------------------------------------ rate limit


async def test_an_app_over_its_rate_limit_gets_429_and_nothing_runs(sqlite_store: Store, tmp_path: Path) -> None:
    # Burst 2, and a rate so low no token comes back during the test.
    async with api_env(sqlite_store, tmp_path, rate_per_second=0.001, rate_burst=2) as env:
        # Requests refused for their body still spend the allowance: the limit counts requests.
        for _ in range(2):
            assert (await env.http.post(METRIC, headers=AUTH, content=b"{")).status_code == 400
        for path, body in ((METRIC, {"value": 0.5}), (EVENT, {"case_id": "c-1"})):
            response = await env.http.post(path, headers={**AUTH, "Idempotency-Key": "x"}, json=body)
            assert response.status_code == 429
            assert error_of(response)["code"] == "rate_limited"
            assert int(response.headers["retry-after"]) >= 1
        assert await nothing_recorded(env.store)
        assert await env.store.idempotency.claim(tenant="acme", app="crm", route="metrics", key="x",
                                                 request_hash="h", now=utcnow(), lease=timedelta(minutes=1)) is None
        # Another app of the tenant has its own allowance; authentication failures spend none.
        other = "/v1/tenants/acme/apps/billing/metrics/error_rate"
        assert (await env.http.post(other, json={"value": 1})).status_code == 401
        assert (await env.http.post(other, headers=AUTH, content=b"{")).status_code == 400


# ------------------------------------------------------------------------------ dashboard


async def test_the_dashboard_without_a_session_shows_only_the_login_form(env: ApiEnv) -> None:
    response = await env.http.get("/")
    assert response.status_code == 200
    assert '<form method="post" action="/login">' in response.text
    assert 'name="token"' in response.text
    assert "signed in" not in response.text


async def test_the_login_link_opens_a_session_and_the_dashboard(env: ApiEnv) -> None:
    response = await env.http.get("/login", params={"token": TOKEN})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert response.cookies[SESSION_COOKIE] and TOKEN not in cookie

    page = await env.http.get("/")  # the client sends the cookie it was given
    assert "The dashboard is signed in." in page.text
    assert 'href="/docs"' in page.text and 'href="/openapi.json"' in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_the_login_form_signs_in_and_logout_signs_out(env: ApiEnv) -> None:
    response = await env.http.post("/login", data={"token": TOKEN})
    assert response.status_code == 303
    session = response.cookies[SESSION_COOKIE]
    assert "signed in" in (await env.http.get("/")).text
    assert (await env.http.post("/logout")).status_code == 403  # without the session's CSRF token
    assert "signed in" in (await env.http.get("/")).text
    await env.http.post("/logout", data={"csrf": csrf_token(session)})
    # The session is over on the server, not just forgotten by this browser.
    env.http.cookies.set(SESSION_COOKIE, session)
    page = await env.http.get("/")
    assert "signed in" not in page.text and 'name="token"' in page.text


@pytest.mark.parametrize("token", ["wrong", "", TOKEN[:-1]])
async def test_a_wrong_token_opens_no_session(env: ApiEnv, token: str) -> None:
    for response in (await env.http.get("/login", params={"token": token}),
                     await env.http.post("/login", data={"token": token})):
        assert response.status_code == 401
        assert SESSION_COOKIE not in response.cookies
        assert "That token is not valid." in response.text


async def test_a_made_up_session_cookie_is_not_a_session(env: ApiEnv) -> None:
    env.http.cookies.set(SESSION_COOKIE, TOKEN)
    page = await env.http.get("/")
    assert "signed in" not in page.text
