"""The reliability drills in reduced form (the full set: `make drills`), and both sides of the fault rule:
provider 429 / 500 / timeout are retried with backoff and the tick recovers (no failure counted);
a 400 is an app fault, not retried, and counts toward the five-failure disable (401: test_agent_turn)."""

from __future__ import annotations

import asyncio

import pytest

from client.install import installed_hash, manifest_json
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import TASK_QUEUE, heartbeat_workflow_id
from drills.crash import run_crash_drills
from drills.provider_server import ProviderServer, error_reply, text_reply
from manifest.loader import parse_manifest
from store import open_store
from tests.store_json import jsonable
from tests.temporal_env import running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

MANIFEST = """\
id: faults
agents:
  - id: bot
    tools: [records]
    heartbeats:
      - slug: tick
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 60
        invoke_always: true
"""
HEARTBEAT = heartbeat_workflow_id("acme", "faults", "bot", "tick")


async def test_crash_drills_reduced(tmp_path):
    """SIGKILL of a worker subprocess mid pre-filter, then a dev-server restart with the SQLite file kept."""
    lines: list[str] = []
    results = await run_crash_drills(tmp_path, names=["prefilter", "server"], report=lines.append)
    assert [r.name for r in results] == ["worker SIGKILL during the pre-filter", "dev server restart (SQLite file kept)"]
    assert all(r.passed for r in results), "\n".join(lines)
    assert all(r.duplicated == 0 and r.completed == r.due >= 1 for r in results)


async def test_a_worker_killed_mid_runtime_task_neither_loses_nor_duplicates_its_run(tmp_path):
    lines: list[str] = []
    [result] = await run_crash_drills(tmp_path, names=["job"], report=lines.append)
    assert result.passed, "\n".join(lines + result.problems)
    assert (result.due, result.completed, result.duplicated) == (1, 1, 0)


async def test_a_worker_killed_after_the_provider_answered_leaves_one_ledger_row(tmp_path):
    lines: list[str] = []
    [result] = await run_crash_drills(tmp_path, names=["ledger"], report=lines.append)
    assert result.passed, "\n".join(lines + result.problems)
    assert (result.due, result.completed, result.duplicated) == (1, 1, 0)


@pytest.fixture
async def rig(tmp_path, monkeypatch):
    store = await open_store(f"sqlite:///{tmp_path / 'f.db'}")
    manifest = parse_manifest(MANIFEST)
    await store.tenants.upsert(tenant="acme", timezone="UTC", provider="openai")
    await store.apps.record(tenant="acme", app="faults", name="faults", version="1", manifest=manifest_json(manifest),
                           manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
    with ProviderServer(api_key="k") as provider:
        for name, value in provider.env().items():
            monkeypatch.setenv(name, value)
        async with time_skipping_env() as env, running_worker(env.client, store):
            config = HeartbeatConfig(tenant="acme", app="faults", agent="bot", heartbeat=manifest.agents[0].heartbeats[0])
            handle = await env.client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config),
                                                     id=config.workflow_id, task_queue=TASK_QUEUE)
            yield store, provider, handle
    await store.close()


async def one_receipt(store) -> dict:
    for _ in range(600):
        receipts = jsonable(await store.receipts.list(tenant="acme", heartbeat_id=HEARTBEAT, limit=10))
        if receipts:
            return receipts[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no receipt")


async def test_provider_429_500_and_timeout_are_retried_and_the_tick_recovers(rig, monkeypatch):
    import providers.openai_provider as openai_provider

    monkeypatch.setattr(openai_provider, "DEFAULT_TIMEOUT_SECONDS", 1.0)
    store, provider, handle = rig
    provider.script_openai(error_reply(429, retry_after="0"), error_reply(500), text_reply("late", delay=2.5),
                           text_reply("HEARTBEAT_OK"))
    await handle.signal(HeartbeatWorkflow.run_now)
    receipt = await one_receipt(store)
    view = await handle.query(HeartbeatWorkflow.status)
    assert (receipt["outcome"], receipt["error"]) == ("suppressed", None)
    assert len(provider.requests_to("openai")) == 4  # three faults retried, then the answer
    assert (view.status, view.failure_count) == ("active", 0)


async def test_provider_400_is_an_app_fault_counted_and_not_retried(rig):
    store, provider, handle = rig
    provider.script_openai(error_reply(400, "bad tool schema"))
    await handle.signal(HeartbeatWorkflow.run_now)
    receipt = await one_receipt(store)
    view = await handle.query(HeartbeatWorkflow.status)
    assert (receipt["outcome"], receipt["reason"]) == ("failed", "ProviderBadRequest")
    assert len(provider.requests_to("openai")) == 1
    assert view.failure_count == 1
