"""Budgets against an adversarial model, on a real dev server and worker, through the real OpenAI and
Anthropic SDKs to the loopback server: a model that always calls a tool, always answers at full
length and reports huge usage.

- per_call_tokens: the call is refused before it is made (`failed / budget_exceeded`), no ledger row;
- daily_usd: spend ends at most one call's actual cost above the ceiling, refusals are
  `refused / budget_daily`, and no provider call happens after the first refusal;
- monthly_usd: the agent is held (one queue item however many ticks), nothing calls the model until
  an operator approves, then it runs again;
- an unpriced model with a budget fails closed (`failed / budget_unpriced`);
- the ledger has exactly one row per provider call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.budgets import queue_items, resolve_item, spend
from client.checks import LoadedManifest
from client.operations import heartbeat_runs
from client.sync import install_manifests
from contract.budget import usd
from contract.names import heartbeat_workflow_id
from drills.provider_server import Reply, tool_reply
from manifest.loader import parse_manifest
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "spend"
MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-haiku-4-5"}


def manifest(agent_budget: str, heartbeat_budget: str) -> str:
    return f"""\
id: spend
agents:
  - id: greedy
    system_prompt: You always use your tools.
    tools: [kv]
    {agent_budget}
    heartbeats:
      - slug: loop
        skill: _internal_app_records
        tool: query
        params: {{record_type: lead}}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 3
        invoke_always: true
        prompt: Work.
        {heartbeat_budget}
      - slug: idle
        skill: _internal_app_records
        tool: query
        params: {{record_type: nothing_here}}
        schedule_type: weekly
        time_of_day: "04:00"
        day_of_week: 3
        prompt: Only when there are records.
        {heartbeat_budget}
"""


LOOP = heartbeat_workflow_id(TENANT, APP, "greedy", "loop")
IDLE = heartbeat_workflow_id(TENANT, APP, "greedy", "idle")


def greedy(_request) -> Reply:
    """Always a tool call, at full length, with huge reported usage."""
    return tool_reply(("kv__get", {"key": "x"}), text="x" * 50, tokens_in=200_000, tokens_out=4_096)


@pytest.fixture(params=["openai", "anthropic"])
def provider_name(request) -> str:
    return request.param


@pytest.fixture
def provider(monkeypatch, provider_name):
    with loopback_provider(monkeypatch, "unused") as server:
        server.fallback = greedy
        yield server


async def run_ticks(client, store, count: int, workflow_id: str = LOOP) -> list:
    """Run the heartbeat `count` times, one after the other; all its receipts, oldest first."""
    before = len(await receipts_of(store, workflow_id))
    for index in range(count):
        await client.get_workflow_handle(workflow_id).signal("run_now")
        for _ in range(600):  # a guard against waiting forever, not a speed requirement
            if len(await receipts_of(store, workflow_id)) >= before + index + 1:
                break
            await asyncio.sleep(0.1)
    return list(reversed(await receipts_of(store, workflow_id)))


async def receipts_of(store, workflow_id: str) -> list:
    from contract.errors import NotFound
    try:
        return await heartbeat_runs(store, workflow_id, limit=100)
    except NotFound:
        return []


async def installed(client, store, provider_name: str, agent_budget: str = "", heartbeat_budget: str = "",
                    model: str | None = None) -> None:
    await store.tenants.upsert(tenant=TENANT, provider=provider_name, model_cheap=model or MODELS[provider_name])
    await install_manifests(client, store, [LoadedManifest(Path("spend.yaml"),
                                                           parse_manifest(manifest(agent_budget, heartbeat_budget)))],
                            tenant=TENANT)


def provider_calls(provider, provider_name: str) -> int:
    """Model calls (not token counts): POST /v1/messages or /v1/chat/completions."""
    return sum(1 for r in provider.requests_to(provider_name) if r.path.rstrip("/").endswith(("messages", "completions")))


async def ledger_rows(store) -> list[dict]:
    return await store.spend.calls(tenant=TENANT, workflow_id=LOOP, limit=1000)


async def test_per_call_ceiling_refuses_before_calling(tmp_path, provider, provider_name):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await installed(client, store, provider_name, heartbeat_budget="budget: {per_call_tokens: 2000}")
        [receipt] = await run_ticks(client, store, 1)
        assert (receipt.outcome, receipt.reason) == ("failed", "budget_exceeded")
        assert provider_calls(provider, provider_name) == 0 and await ledger_rows(store) == []


async def test_daily_ceiling_holds_within_one_call(tmp_path, provider, provider_name):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await installed(client, store, provider_name, heartbeat_budget="budget: {daily_usd: 0.2}")
        receipts = await run_ticks(client, store, 3)
        rows = await ledger_rows(store)
        costs = [row["nano_usd"] for row in rows]
        assert len(rows) == provider_calls(provider, provider_name) > 0  # one row per provider call
        assert all(cost is not None and row["status"] == "settled" for row, cost in zip(rows, costs, strict=True))
        assert sum(costs) <= usd_nano("0.2") + max(costs)  # at most one call's cost above the ceiling
        refused = [r for r in receipts if r.outcome == "refused"]
        assert refused and all(r.reason == "budget_daily" for r in refused)
        calls = provider_calls(provider, provider_name)
        await run_ticks(client, store, 1)  # refused again, with no provider call
        assert provider_calls(provider, provider_name) == calls
        assert [line.calls for line in await spend(store, tenant=TENANT, by="task")] == [len(rows)]


async def test_monthly_ceiling_holds_the_agent_until_approved(tmp_path, provider, provider_name):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await installed(client, store, provider_name, agent_budget="budget: {monthly_usd: 0.2}")
        receipts = await run_ticks(client, store, 4)
        assert receipts[-1].outcome == "refused" and receipts[-1].reason == "budget_monthly"
        calls = provider_calls(provider, provider_name)
        rows = await ledger_rows(store)
        assert sum(row["nano_usd"] for row in rows) <= usd_nano("0.2") + max(row["nano_usd"] for row in rows)
        await run_ticks(client, store, 2)
        assert provider_calls(provider, provider_name) == calls  # held: nothing calls the model
        [item] = await queue_items(store, tenant=TENANT)  # one item, however many ticks
        assert (item.kind, item.subject) == ("budget_monthly", "spend/greedy")
        assert [e.action for e in await store.audit.list(tenant=TENANT, action="budget_monthly")] == ["budget_monthly"]

        await resolve_item(store, tenant=TENANT, item_id=item.id, approve=True, approve_once=True, actor="test")
        provider.fallback = lambda _r: Reply(text="HEARTBEAT_OK")
        [after] = (await run_ticks(client, store, 1))[-1:]
        assert after.outcome in ("suppressed", "substantive") and provider_calls(provider, provider_name) > calls


async def test_a_no_op_tick_makes_no_call_and_no_ledger_row(tmp_path, provider, provider_name):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await installed(client, store, provider_name, agent_budget="budget: {monthly_usd: 5}",
                        heartbeat_budget="budget: {daily_usd: 1}")
        found = await run_ticks(client, store, 3, IDLE)
        assert [(r.outcome, r.reason, r.to_json()["usd"]) for r in found] == [("skipped", "prefilter_empty", None)] * 3
        assert provider.requests == [] and await store.spend.summary(tenant=TENANT, by="task") == []


async def test_unpriced_model_fails_closed(tmp_path, provider, provider_name):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await installed(client, store, provider_name, agent_budget="budget: {monthly_usd: 5}",
                        model="house-model-without-a-price")
        [receipt] = await run_ticks(client, store, 1)
        assert (receipt.outcome, receipt.reason) == ("failed", "budget_unpriced")
        assert "--price house-model-without-a-price=IN,OUT" in (receipt.error or "")
        assert provider_calls(provider, provider_name) == 0
        # The tenant's own price makes it priced: it runs.
        await store.tenants.upsert(tenant=TENANT, prices={"house-model-without-a-price": ["1", "2"]})
        provider.fallback = lambda _r: Reply(text="HEARTBEAT_OK")
        [_, ran] = await run_ticks(client, store, 1)
        assert ran.outcome == "suppressed"
        [row] = await ledger_rows(store)
        assert row["nano_usd"] is not None and row["nano_usd"] > 0


def usd_nano(amount: str) -> int:
    from contract.budget import nano_usd
    return nano_usd(amount)


def test_usd_conversions_round_up():
    from contract.budget import nano_usd
    assert nano_usd("0.0000000001") == 1 and usd(nano_usd("1.5")) == usd(1_500_000_000)
