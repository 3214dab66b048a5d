"""Budgets across days and months on the time-skipping test server, with a real worker and the
real OpenAI SDK against the loopback server (every call reports 200,000 input tokens: $0.05 on
gpt-5-mini). A heartbeat ticks every 6 hours in Europe/Berlin.

- daily_usd: refused (`refused / budget_daily`, not a failure) from the second tick of a
  tenant-local day until the next local midnight, then it runs again;
- monthly_usd: the agent is held at the ceiling and stays held into the next month, until an
  operator approves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from client.budgets import queue_items, resolve_item
from client.install import installed_hash, manifest_json
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import TASK_QUEUE, heartbeat_workflow_id
from drills.provider_server import text_reply
from manifest.loader import parse_manifest
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

TENANT, APP, ZONE = "acme", "spend", ZoneInfo("Europe/Berlin")
HEARTBEAT_ID = heartbeat_workflow_id(TENANT, APP, "saver", "every6h")


def manifest(budget_line: str, agent_budget: str = "") -> str:
    return f"""\
id: spend
agents:
  - id: saver
    {agent_budget}
    heartbeats:
      - slug: every6h
        skill: _internal_app_records
        tool: query
        params: {{record_type: lead}}
        interval_minutes: 360
        invoke_always: true
        prompt: Work.
        {budget_line}
"""


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "unused") as server:
        server.fallback = text_reply("Did some work.", tokens_in=200_000, tokens_out=10)
        yield server


async def install(store, text: str):
    parsed = parse_manifest(text)
    await store.tenants.upsert(tenant=TENANT, timezone="Europe/Berlin", provider="openai", model_cheap="gpt-5-mini")
    await store.apps.record(tenant=TENANT, app=APP, name=APP, version="1", manifest=manifest_json(parsed),
                            manifest_hash=installed_hash(manifest_json(parsed), "Europe/Berlin"))
    return parsed


async def start(client, parsed):
    config = HeartbeatConfig(tenant=TENANT, app=APP, agent="saver", heartbeat=parsed.agents[0].heartbeats[0],
                             tenant_timezone="Europe/Berlin")
    return await client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config), id=config.workflow_id,
                                       task_queue=TASK_QUEUE)


async def receipts(store) -> list:
    return list(reversed(await store.receipts.list(tenant=TENANT, heartbeat_id=HEARTBEAT_ID, limit=200)))


def local_day(receipt) -> str:
    return receipt.at.astimezone(ZONE).date().isoformat()


async def test_daily_budget_refuses_until_the_next_local_midnight(tmp_path, provider):
    async with tenant_store(tmp_path, TENANT) as store, time_skipping_env() as env, \
            running_worker(env.client, store):
        parsed = await install(store, manifest("budget: {daily_usd: 0.055}"))
        handle = await start(env.client, parsed)
        await env.sleep(timedelta(days=3, hours=1))
        view = await handle.query(HeartbeatWorkflow.status)
        found = await receipts(store)
    days: dict[str, list[tuple[str, str | None]]] = {}
    for receipt in found:
        days.setdefault(local_day(receipt), []).append((receipt.outcome, receipt.reason))
    assert len(days) >= 3
    for outcomes in days.values():
        ran = [o for o in outcomes if o[0] == "substantive"]
        refused = [o for o in outcomes if o[0] == "refused"]
        # Each local day: its first tick runs ($0.05 of $0.055), every later one is refused.
        assert outcomes[0] == ("substantive", None) and len(ran) == 1
        assert refused == [("refused", "budget_daily")] * (len(outcomes) - 1)
    assert (view.status, view.failure_count) == ("active", 0)  # refusals are not failures
    assert len([r for r in provider.requests_to("openai")]) == sum(1 for r in found if r.outcome == "substantive")


async def test_monthly_hold_outlasts_the_month_until_approved(tmp_path, provider):
    async with tenant_store(tmp_path, TENANT) as store, time_skipping_env() as env, \
            running_worker(env.client, store):
        parsed = await install(store, manifest("", "budget: {monthly_usd: 0.12}"))
        now = await env.get_current_time()
        local = now.astimezone(ZONE)
        next_month = (local.replace(day=1) + timedelta(days=32)).replace(day=1, hour=12, minute=0, second=0,
                                                                         microsecond=0)
        handle = await start(env.client, parsed)
        await env.sleep(next_month - now + timedelta(days=1))  # into the next local month, by a day
        calls = len(provider.requests_to("openai"))
        found = await receipts(store)
        [item] = await queue_items(store, tenant=TENANT)
        # Ticks run while their reservation fits ($0.05 each, reserved at much less: the estimate cannot
        # know the usage the model will report), so spend passes the ceiling by at most one call; from
        # then on the agent is held: refused, also after the month turned.
        ran = [r for r in found if r.outcome == "substantive"]
        assert found[:len(ran)] == ran and len(ran) == calls >= 2
        assert sum(r.to_json()["usd"] is not None and float(r.to_json()["usd"]) for r in ran) <= 0.12 + 0.05 + 1e-9
        later = found[len(ran):]
        assert later and all((r.outcome, r.reason) == ("refused", "budget_monthly") for r in later)
        assert any(r.at.astimezone(ZONE) >= next_month for r in later)
        assert (await handle.query(HeartbeatWorkflow.status)).failure_count == 0

        await resolve_item(store, tenant=TENANT, item_id=item.id, approve=True, approve_once=True, actor="test",
                           now=await env.get_current_time())
        await env.sleep(timedelta(hours=7))
        assert (await receipts(store))[-1].outcome == "substantive"
        assert len(provider.requests_to("openai")) == calls + 1


def test_month_arithmetic_of_the_test():
    # The test above reaches the next month from any day of this one.
    for day in (1, 28, 31):
        local = datetime(2026, 12, day, 9, tzinfo=ZONE)
        assert (local.replace(day=1) + timedelta(days=32)).replace(day=1).month == 1
