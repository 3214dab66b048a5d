"""The dashboard in a real browser: headless Chromium (Debian's, installed by `make test`) driven by
Playwright, against `heartbeats serve`'s app on a real uvicorn socket, a dev server and a worker.

Sign in by the token link, find the waiting run on the needs-attention page, submit its manual
transition with a bad payload (refused on the page, nothing changed in Temporal) and then a good one
(the run moves on, the document records it)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, async_playwright

from api.app import build_context, create_app
from api.backends import Backends
from api.server import base_url, listen, uvicorn_server
from api.settings import load_settings
from client.checks import load_manifests
from client.machines import show_run, start_run
from client.operations import heartbeat_status
from client.sync import install_manifests
from contract.budget import CeilingReached, SpendEntry, nano_usd
from store import open_store
from tests.temporal_env import dev_server, running_worker

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "browser-test-token-0123456789abcdefghijklmnop"
WEEKLY = """\
id: reports
agents:
  - id: analyst
    budget: {monthly_usd: 0.02}
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
MONTHLY_CEILING_USD = "0.02"


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A tab of Debian's headless Chromium, closed with its browser afterwards."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


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
    async with chromium_page() as page:
        await page.goto(f"{url}/")
        assert await page.locator('input[name="token"]').count() == 1  # nothing readable without signing in
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.get_by_role("heading", name="Needs attention").wait_for()
        for _ in range(50):  # visibility is eventually consistent
            if await page.get_by_role("link", name=run.id, exact=True).count():
                break
            await page.reload()
            await asyncio.sleep(0.2)
        await page.get_by_role("link", name=run.id, exact=True).click()
        await page.get_by_role("button", name="Fire approve").wait_for()
        assert await page.locator("#place").inner_text() == "awaiting_approval"
        # Mermaid (served by the dashboard itself) drew the graph, the current place among its states.
        graph = page.locator("pre.mermaid svg")
        await graph.wait_for()
        assert "awaiting_approval" in await graph.text_content()
        history = page.get_by_role("link", name=f"history of {run.id} in the Temporal web UI")
        assert "/namespaces/default/workflows?query=WorkflowId" in await history.get_attribute("href")

        await page.locator("#approve-approver").fill("")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Fire approve").click()
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "payload refused" in await alert.inner_text()
        assert (await show_run(client, run.id)).status == "waiting"  # nothing changed

        await page.locator("#approve-approver").fill("ada")
        await page.get_by_role("button", name="Fire approve").click()
        await page.get_by_role("heading", name="expense_approval · claim-7").wait_for()
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
    async with chromium_page() as page:
        await page.goto(f"{url}/login?token={TOKEN}")
        answer = await page.request.post(f"{url}/runs/{run.id}/transitions/approve",
                                         form={"csrf": "forged", "text:approver": "mallory"})
        assert answer.status == 403
    assert (await show_run(client, run.id)).status in ("running", "waiting", "pending")


async def status_shown(page, url: str, wanted: str) -> str:
    shown = ""
    for _ in range(50):
        await page.goto(f"{url}/tenants/demo/apps/reports")
        shown = await page.locator("#status-weekly_review").inner_text()
        if shown == wanted:
            break
        await asyncio.sleep(0.2)
    return shown


async def test_pause_and_resume_a_heartbeat_from_its_tenants_page(served):
    client, store, url = served
    async with chromium_page() as page:
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.get_by_role("link", name="Tenants").click()
        await page.get_by_role("link", name="demo", exact=True).click()
        await page.get_by_role("link", name="reports", exact=True).first.click()
        await page.get_by_role("heading", name="App reports").wait_for()
        assert await status_shown(page, url, "active") == "active"
        async with page.expect_navigation():  # the POST, then its redirect back
            await page.get_by_role("button", name=f"pause {WEEKLY_ID}").click()
        assert await status_shown(page, url, "paused") == "paused"
        view, _ = await heartbeat_status(client, WEEKLY_ID)
        assert view.status == "paused"
        # By keyboard alone: Tab to the resume button, Enter.
        for _ in range(80):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.getAttribute('aria-label')") == f"resume {WEEKLY_ID}":
                break
        else:
            raise AssertionError("the resume button cannot be reached with Tab")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert await status_shown(page, url, "active") == "active"
    assert (await heartbeat_status(client, WEEKLY_ID))[0].status == "active"
    audited = await store.audit.list(tenant="demo")
    assert [(entry.actor, entry.action) for entry in reversed(audited)][-2:] == [("dashboard", "pause"),
                                                                                 ("dashboard", "resume")]


async def spend_until_held(store) -> None:
    """What the LLM gateway does for two calls of the analyst: the first is settled (0.03 USD), the
    second's reservation passes the 0.02 USD monthly ceiling: refused, and the agent held."""
    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin"))
    def entry(key: str) -> SpendEntry:
        return SpendEntry(tenant="demo", app="reports", agent="analyst", workflow_id=WEEKLY_ID, purpose="turn",
                          call_key=key, provider="openai", model="gpt-4o-mini", local_day=now.strftime("%Y-%m-%d"),
                          local_month=now.strftime("%Y-%m"))
    await store.spend.reserve(entry("t1/0"), reserve_nano=0, daily_nano=None, monthly_nano=None)
    await store.spend.settle(entry("t1/0"), tokens_in=1200, tokens_out=300, cache_read_tokens=0, cache_write_tokens=0,
                             cost_nano=nano_usd(Decimal("0.03")))
    with pytest.raises(CeilingReached):
        await store.spend.reserve(entry("t2/0"), reserve_nano=nano_usd(Decimal("0.001")), daily_nano=None,
                                  monthly_nano=nano_usd(Decimal(MONTHLY_CEILING_USD)))


async def test_a_budget_hold_appears_without_a_reload_and_is_approved_once_from_the_queue(served):
    client, store, url = served
    async with chromium_page() as page:
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.get_by_role("heading", name="Needs attention").wait_for()
        await spend_until_held(store)
        # The list refreshes itself (htmx): the hold shows up on the page already open.
        approve = page.get_by_role("button", name=re.compile(r"^approve once queue item \d+$"))
        await approve.wait_for(timeout=30_000)
        assert "monthly budget hold of reports/analyst" in await page.locator("#attention").inner_text()
        [item] = await store.queue.list(tenant="demo", status="open")

        # Spend against the budget: the chart and the same numbers in a table.
        await page.goto(f"{url}/tenants/demo/spend")
        chart = page.locator("svg[role=img]").first
        assert "share of the monthly ceiling spent per agent" in await chart.locator("title").text_content()
        row = page.get_by_role("row", name="reports/analyst")
        assert "0.030000" in await row.inner_text() and "held: its calls are refused" in await row.inner_text()

        await page.goto(f"{url}/")
        async with page.expect_navigation():
            await approve.click()
        await page.get_by_role("heading", name="Needs attention").wait_for()
        assert await page.get_by_role("button", name=f"approve once queue item {item.id}").count() == 0
        await page.goto(f"{url}/tenants/demo/spend")
        assert "waived for this month" in await page.get_by_role("row", name="reports/analyst").inner_text()
    resolved = await store.queue.get(item_id=item.id)
    assert (resolved.status, resolved.resolved_by) == ("approved", "dashboard")
    assert resolved.resolution["approve_once"] == datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    assert not await store.spend.held(tenant="demo", app="reports", agent="analyst")


async def test_a_heartbeats_receipts_timeline_in_the_tenants_zone_with_its_temporal_link(served):
    client, store, url = served
    async with chromium_page() as page:
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.goto(f"{url}/tenants/demo/apps/reports")
        async with page.expect_navigation():
            await page.get_by_role("button", name=f"run-now {WEEKLY_ID}").click()
        await page.get_by_role("link", name="reports/analyst/weekly_review").first.click()
        for _ in range(50):
            if await page.locator("ol.timeline li").count():
                break
            await asyncio.sleep(0.2)
            await page.reload()
        entry = page.locator("ol.timeline li").first
        text = await entry.inner_text()
        assert "run_now" in text and "tokens 0 in / 0 out" in text, text
        moment = entry.locator("time")
        assert (await moment.get_attribute("title")).endswith("Z UTC")
        assert re.search(r"CES?T$", await moment.inner_text())  # Europe/Berlin, the tenant's zone
        history = page.get_by_role("link", name=f"history of {WEEKLY_ID} in the Temporal web UI")
        assert WEEKLY_ID in unquote(await history.get_attribute("href"))
        # Searching the list by slug prefix.
        await page.goto(f"{url}/tenants/demo")
        await page.get_by_label("Agent or slug starts with").fill("weekly")
        await page.get_by_role("button", name="Search").click()
        assert await page.locator("#status-weekly_review").count() == 1
        await page.get_by_label("Agent or slug starts with").fill("nothing")
        await page.get_by_role("button", name="Search").click()
        await page.get_by_text("No heartbeats or tasks match.").wait_for()
    [receipt] = await store.receipts.list(tenant="demo", heartbeat_id=WEEKLY_ID, limit=5)
    assert receipt.trigger == "run_now"


async def test_shadow_report_shows_agreement_and_a_case_is_decided_with_one_click(served):
    client, store, url = served
    proposal = [{"tool": "email.send", "arguments": {"to": "ada@example.com"}}]
    for case in ("c1", "c2", "c3"):  # what a shadow run records: its case and its (not executed) proposal
        await store.shadow.record_run(tenant="demo", workflow_id=WEEKLY_ID, case_key=case, tick_id=f"tick-{case}")
        await store.shadow.propose(tenant="demo", workflow_id=WEEKLY_ID, case_key=case, tick_id=f"tick-{case}",
                                   call_key=f"tick-{case}/1/0", tool="email.send", arguments=proposal[0]["arguments"])
    await store.shadow.decide(tenant="demo", workflow_id=WEEKLY_ID, case_key="c1", actions=proposal, decided_by="ops")
    await store.shadow.decide(tenant="demo", workflow_id=WEEKLY_ID, case_key="c2", actions=[], decided_by="ops")
    async with chromium_page() as page:
        await page.goto(f"{url}/login?token={TOKEN}")
        await page.goto(f"{url}/shadow/{WEEKLY_ID}")
        summary = page.locator("#shadow-summary")
        assert "2 decided by a person · 1 agree" in " ".join((await summary.inner_text()).split())
        assert await page.get_by_role("row", name=re.compile(r"^c2 ")).count() == 1  # the disagreeing case
        async with page.expect_navigation():
            await page.get_by_role("button", name="agree with the proposal case c3").click()
        await page.get_by_role("heading", name="Shadow report").wait_for()
        assert "3 decided by a person · 2 agree" in " ".join((await summary.inner_text()).split())
        await page.get_by_role("button", name="Sign out").click()
        await page.locator('input[name="token"]').wait_for()
        await page.goto(f"{url}/shadow/{WEEKLY_ID}")  # the session is over: nothing readable
        assert await page.locator('input[name="token"]').count() == 1 and await summary.count() == 0
    assert await store.shadow.decision(tenant="demo", workflow_id=WEEKLY_ID, case_key="c3") == proposal
    audited = await store.audit.list(tenant="demo", action="shadow_decide")
    assert [(entry.actor, entry.detail["case"]) for entry in audited] == [("dashboard", "c3")]
