"""The dashboard's pages over HTTP (in process, real store, and a dev server where a page needs
Temporal): nothing without a session, only the listed scripts, paging over visibility, search,
prefix-sharing tenants kept apart, refusals as pages with the right status, no open redirect."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from api.dashboard import ROOMS
from api.dashboard.assets import STATIC
from api.dashboard.layout import SCRIPTS, csrf_token
from api.sessions import SESSION_COOKIE
from api.settings import load_settings
from client.checks import load_manifests
from client.operations import page_heartbeats
from client.sync import install_manifests
from contract.budget import CeilingReached, SpendEntry, nano_usd
from contract.errors import ConfigurationError, InvalidInput
from store import open_store
from tests.api_env import TOKEN, api_env
from tests.temporal_env import dev_server, running_worker

SAMPLE = {"tenant": "acme", "app": "crm", "workflow_id": "heartbeat:acme:crm:bot:tick", "signal": "pause",
          "run_id": "machine:acme:crm:flow:k", "name": "approve", "item_id": "1", "name:path": "dashboard.js"}
OPEN = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/")}


def dashboard_routes() -> list[tuple[str, str]]:
    found = []
    for room in ROOMS:
        for route in room.router.routes:
            for method in route.methods:
                path = re.sub(r"\{([^}]+)\}", lambda m: SAMPLE[m.group(1)], route.path)
                if (method, route.path) not in OPEN:
                    found.append((method, path))
    return found


@pytest.fixture
async def env(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    async with api_env(store, tmp_path, temporal_address="127.0.0.1:1") as opened:
        yield opened
    await store.close()


async def sign_in(env) -> str:
    await env.http.get("/login", params={"token": TOKEN})
    return env.http.cookies[SESSION_COOKIE]


def test_every_dashboard_route_is_listed_here() -> None:
    assert len(dashboard_routes()) >= 12  # a new room's routes are checked below without listing them


@pytest.mark.parametrize(("method", "path"), dashboard_routes())
async def test_no_page_or_action_without_a_session(env, method: str, path: str) -> None:
    response = await env.http.request(method, path, data={"csrf": "x", "decision": "reject"})
    assert response.status_code == 401, (method, path, response.text[:200])
    assert 'name="token"' in response.text and "Sign in first." in response.text


async def test_only_the_listed_scripts_are_served_and_they_are_the_vendored_files(env) -> None:
    await sign_in(env)
    table = (STATIC / "vendor" / "README.md").read_text()
    for name in SCRIPTS:
        response = await env.http.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
        if name.startswith("vendor/"):
            assert hashlib.sha256(response.content).hexdigest() in table, name
            assert "immutable" in response.headers["cache-control"]
    for other in ("vendor/README.md", "../dashboard/layout.py", "vendor/mermaid-LICENSE", "%2e%2e/app.py"):
        assert (await env.http.get(f"/static/{other}")).status_code == 404, other


async def test_pages_carry_a_content_security_policy_without_inline_scripts(env) -> None:
    await sign_in(env)
    page = await env.http.get("/tenants")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "<script " in page.text  # scripts by src only


async def test_a_form_without_the_csrf_token_changes_nothing(env) -> None:
    session = await sign_in(env)
    await env.store.tenants.upsert(tenant="acme", timezone="UTC")
    assert await env.store.queue.open(tenant="acme", app="crm", agent="bot", kind="review", subject="s", open_key="k",
                                      detail={})
    [item] = await env.store.queue.list(tenant="acme")
    refused = await env.http.post(f"/queue/{item.id}/resolve", data={"csrf": "forged", "decision": "approve"})
    assert refused.status_code == 403
    assert (await env.store.queue.get(item_id=item.id)).status == "open"
    wrong = await env.http.post(f"/queue/{item.id}/resolve", data={"csrf": csrf_token(session), "decision": "maybe"})
    assert wrong.status_code == 400 and "decision must be" in wrong.text
    done = await env.http.post(f"/queue/{item.id}/resolve", data={"csrf": csrf_token(session), "decision": "approve"})
    assert done.status_code == 303
    again = await env.http.post(f"/queue/{item.id}/resolve", data={"csrf": csrf_token(session), "decision": "reject"})
    assert again.status_code == 409 and "already resolved" in again.text
    assert (await env.store.queue.get(item_id=item.id)).resolved_by == "dashboard"


def manifest(app: str, slugs: list[str]) -> str:
    beats = "".join(f"""
      - slug: {slug}
        skill: _internal_app_records
        tool: query
        params: {{record_type: kpi}}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 6""" for slug in slugs)
    return f"id: {app}\nagents:\n  - id: bot\n    heartbeats:{beats}\n"


@pytest.fixture
async def installed(tmp_path):
    """Tenants acme and acme2 (a prefix-sharing id), each with app crm; acme has 5 heartbeats."""
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    async with dev_server(tmp_path) as (client, _), running_worker(client, store):
        for tenant, slugs in (("acme", ["alpha", "alpine", "beta", "gamma", "delta"]), ("acme2", ["alpha", "secret"])):
            await store.tenants.upsert(tenant=tenant, timezone="America/New_York")
            path = tmp_path / f"{tenant}.yaml"
            path.write_text(manifest("crm", slugs))
            await install_manifests(client, store, load_manifests([path]), tenant=tenant)
        async with api_env(store, tmp_path, temporal=client) as opened:
            yield client, opened
    await store.close()


async def listed_ids(client, *, expect: int = 0, **kwargs) -> list[str]:
    ids: list[str] = []
    for _ in range(100):  # visibility is eventually consistent
        ids, page = [], None
        while True:
            found = await page_heartbeats(client, page=page, **kwargs)
            ids += [view.id for view in found.views]
            page = found.next_page
            if page is None:
                break
        if len(ids) >= expect:
            return ids
        await asyncio.sleep(0.1)
    return ids


async def test_paging_walks_every_heartbeat_once_and_search_keeps_a_prefix(installed) -> None:
    client, env = installed
    ids = await listed_ids(client, tenant="acme", page_size=2, expect=5)
    assert sorted(ids) == sorted(f"heartbeat:acme:crm:bot:{s}" for s in ("alpha", "alpine", "beta", "gamma", "delta"))
    searched = await listed_ids(client, tenant="acme", search="alp", page_size=50)
    assert sorted(searched) == ["heartbeat:acme:crm:bot:alpha", "heartbeat:acme:crm:bot:alpine"]
    assert await listed_ids(client, tenant="acme", search="bot", page_size=50) != []  # the agent's id matches too
    for bad in ({"search": 'a" OR HeartbeatTenant="acme2'}, {"page": "not-a-token!"}, {"page_size": 0}):
        with pytest.raises(InvalidInput):
            await page_heartbeats(client, tenant="acme", **bad)


async def test_a_tenants_pages_show_none_of_a_prefix_sharing_tenants_heartbeats(installed) -> None:
    client, env = installed
    await sign_in(env)
    await listed_ids(client, tenant="acme2", expect=2)
    await listed_ids(client, tenant="acme", expect=5)
    for path in ("/tenants/acme", "/tenants/acme/apps/crm", "/tenants/acme?q=se"):
        page = await env.http.get(path)
        assert page.status_code == 200
        assert "secret" not in page.text and "acme2" not in page.text, path
    assert "crm/bot/secret" in (await env.http.get("/tenants/acme2")).text
    paged = await env.http.get("/tenants/acme/apps/crm", headers={"HX-Request": "true"})  # the live refresh
    assert paged.text.startswith('<section id="entities-crm"') and "<html" not in paged.text
    for path, status in (("/tenants/nobody", 404), ("/tenants/Acme", 400), ("/tenants/acme/apps/nope", 404),
                         ("/tenants/acme?q=%22", 400), ("/tenants/acme?page=zz", 400),
                         ("/entities/heartbeat:acme:crm", 400), ("/runs/machine:acme:crm:flow:none", 404),
                         ("/shadow/heartbeat:acme:crm:bot:nope", 404)):
        response = await env.http.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:300])
        assert 'role="alert"' in response.text


async def test_an_action_goes_back_only_to_a_local_page(installed) -> None:
    client, env = installed
    session = await sign_in(env)
    target = "heartbeat:acme:crm:bot:beta"
    for given, expected in (("/tenants/acme?q=b", "/tenants/acme?q=b"), ("https://evil.example/", f"/entities/{target}"),
                            ("//evil.example/", f"/entities/{target}")):
        response = await env.http.post(f"/entities/{target}/pause", data={"csrf": csrf_token(session), "next": given})
        assert (response.status_code, response.headers["location"]) == (303, expected)
    audited = await env.store.audit.list(tenant="acme")
    assert {(entry.actor, entry.action, entry.target) for entry in audited} == {("dashboard", "pause", target)}
    assert await env.store.audit.list(tenant="acme2") == []


async def test_a_daily_budget_stop_shows_today_even_while_temporal_cannot_be_asked(env) -> None:
    await sign_in(env)
    await env.store.tenants.upsert(tenant="acme", timezone="Pacific/Kiritimati")  # UTC+14: "today" is the tenant's
    today = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Kiritimati"))
    target = "heartbeat:acme:crm:bot:tick"
    entry = SpendEntry(tenant="acme", app="crm", agent="bot", workflow_id=target, purpose="turn", call_key="t/0",
                       provider="openai", model="gpt-4o-mini", local_day=today.strftime("%Y-%m-%d"),
                       local_month=today.strftime("%Y-%m"))
    with pytest.raises(CeilingReached):
        await env.store.spend.reserve(entry, reserve_nano=nano_usd(Decimal("0.5")), daily_nano=nano_usd(Decimal("0.1")),
                                      monthly_nano=None)
    page = await env.http.get("/")
    assert page.status_code == 200
    assert "Temporal could not be asked" in page.text  # said, not a 500 ...
    assert "daily budget reached: 0 of 0.1 USD today" in page.text and target in page.text  # ... and the store's rows


def test_the_temporal_ui_address_must_be_an_http_url() -> None:
    for bad in ("javascript:alert(1)", "ftp://host", 'http://x" onmouseover="y'):
        with pytest.raises(ConfigurationError, match="HEARTBEATS_API_TEMPORAL_UI_URL"):
            load_settings(token=TOKEN, temporal_ui_url=bad)
    assert load_settings(token=TOKEN, temporal_ui_url="https://cloud.temporal.io").temporal_ui_url == "https://cloud.temporal.io"
