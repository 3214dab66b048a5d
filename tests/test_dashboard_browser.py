"""The dashboard in a real browser: headless Chromium (Debian's, installed by `make test`) driven by
Playwright, against `heartbeats serve`'s app on a real uvicorn socket, a dev server and a worker.

Sign in by the token link, find the waiting run on the needs-attention page, submit its manual
transition with a bad payload (refused on the page, nothing changed in Temporal) and then a good one
(the run moves on, the document records it)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from api.app import build_context, create_app
from api.backends import Backends
from api.server import base_url, listen, uvicorn_server
from api.settings import load_settings
from client.checks import load_manifests
from client.machines import show_run, start_run
from client.operations import heartbeat_status
from client.sync import install_manifests
from store import open_store
from tests.temporal_env import dev_server, running_worker

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "browser-test-token-0123456789abcdefghijklmnop"
WEEKLY = """\
id: reports
agents:
  - id: analyst
    heartbeats:
      - slug: weekly_review
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 6
"""
WEEKLY_ID = "heartbeat:demo:reports:analyst:weekly_review"


@pytest.fixture
async def served(tmp_path):
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium package"
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    await store.tenants.upsert(tenant="demo", timezone="Europe/Berlin")
    async with dev_server(tmp_path) as (client, _), running_worker(client, store):
        weekly = tmp_path / "weekly.yaml"
        weekly.write_text(WEEKLY)
        await install_manifests(client, store, load_manifests([REPO / "manifests" / "workflows" / "expenses.yaml",
                                                               weekly]), tenant="demo")
        context = build_context(load_settings(token=TOKEN, token_file=tmp_path / "api-token"),
                                backends=Backends(store=store, temporal=client))
        sock = listen("127.0.0.1", 0)
        server = uvicorn_server(create_app(context), quiet=True)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.05)
            yield client, store, base_url(sock)
        finally:
            server.should_exit = True
            await serving
            sock.close()
    await store.close()


async def test_sign_in_find_the_waiting_run_and_move_it_with_a_bad_then_a_good_payload(served):
    client, store, url = served
    run = await start_run(client, store, tenant="demo", app="expenses", workflow="expense_approval", key="claim-7",
                          variables={"AMOUNT": 80, "NOTE": "train"})
    for _ in range(100):
        if (await show_run(client, run.id)).status == "waiting":
            break
        await asyncio.sleep(0.1)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{url}/")
        assert await page.locator('input[name="token"]').count() == 1  # nothing readable without signing in
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.get_by_role("heading", name="Needs attention").wait_for()
        for _ in range(50):  # visibility is eventually consistent
            if await page.get_by_role("link", name=run.id).count():
                break
            await page.reload()
            await asyncio.sleep(0.2)
        await page.get_by_role("link", name=run.id).click()
        await page.get_by_role("button", name="Fire approve").wait_for()
        assert await page.locator("#place").inner_text() == "awaiting_approval"

        await page.locator("#approve-approver").fill("")
        await page.get_by_role("button", name="Fire approve").click()
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "payload refused" in await alert.inner_text()
        assert (await show_run(client, run.id)).status == "waiting"  # nothing changed

        await page.locator("#approve-approver").fill("ada")
        await page.get_by_role("button", name="Fire approve").click()
        await page.get_by_role("heading", name="expense_approval · claim-7").wait_for()
        await browser.close()
    for _ in range(100):
        view = await show_run(client, run.id)
        if view.status == "completed":
            break
        await asyncio.sleep(0.1)
    assert [step.transition for step in view.steps] == ["file_expense", "approve", "close_approved"]
    document = await store.documents.get(tenant="demo", app="expenses", name="expense")
    assert document.content["approver"] == "ada" and document.content["status"] == "approved"


async def test_a_form_without_the_sessions_csrf_token_is_refused(served):
    client, store, url = served
    run = await start_run(client, store, tenant="demo", app="expenses", workflow="expense_approval", key="claim-8",
                          variables={"AMOUNT": 5, "NOTE": "coffee"})
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{url}/login?token={TOKEN}")
        answer = await page.request.post(f"{url}/runs/{run.id}/transitions/approve",
                                         form={"csrf": "forged", "text:approver": "mallory"})
        assert answer.status == 403
        await browser.close()
    assert (await show_run(client, run.id)).status in ("running", "waiting", "pending")


async def status_shown(page, url: str, wanted: str) -> str:
    shown = ""
    for _ in range(50):
        await page.goto(f"{url}/tenants/demo")
        shown = await page.locator("#status-weekly_review").inner_text()
        if shown == wanted:
            break
        await asyncio.sleep(0.2)
    return shown


async def test_pause_and_resume_a_heartbeat_from_its_tenants_page(served):
    client, store, url = served
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.get_by_role("link", name="heartbeats and tasks").click()
        assert await status_shown(page, url, "active") == "active"
        await page.get_by_role("button", name=f"pause {WEEKLY_ID}").click()
        assert await status_shown(page, url, "paused") == "paused"
        view, _ = await heartbeat_status(client, WEEKLY_ID)
        assert view.status == "paused"
        await page.get_by_role("button", name=f"resume {WEEKLY_ID}").click()
        assert await status_shown(page, url, "active") == "active"
        await browser.close()
    assert (await heartbeat_status(client, WEEKLY_ID))[0].status == "active"
    audited = await store.audit.list(tenant="demo")
    assert [(entry.actor, entry.action) for entry in reversed(audited)][-2:] == [("dashboard", "pause"),
                                                                                 ("dashboard", "resume")]
