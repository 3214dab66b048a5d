"""The durable agent turn end to end: real Temporal, real store, and the real `anthropic` and
`openai` SDK clients talking HTTP to a loopback server that speaks their wire formats."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.install import installed_hash, manifest_json
from client.sync import install_manifests
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.messages import MAX_AGENT_STEPS, MAX_TOKENS_PER_CALL
from contract.names import TASK_QUEUE, heartbeat_workflow_id, vision_workflow_id
from drills.provider_server import ProviderServer, text_reply, tool_reply
from manifest.loader import parse_manifest
from schedule import upcoming_fires
from store import open_store
from tests.store_json import jsonable
from tests.temporal_env import dev_server, running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

REPO = Path(__file__).resolve().parent.parent
TENANT = "acme"
MANIFEST = """\
id: marketing
agents:
  - id: cmo
    system_prompt: You are the CMO of an AI-first marketing org.
    tools: [records, email]
    heartbeats:
      - slug: hourly_kpi
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 5
        invoke_always: true
        prompt: Review KPI delta, escalate if off-pace.
"""
HEARTBEAT_ID = heartbeat_workflow_id(TENANT, "marketing", "cmo", "hourly_kpi")
# The same app with hourly_kpi weekly, days away: in tests that skip time, only run-now ticks it,
# so scripted replies are consumed in order.
WEEKLY_MANIFEST = MANIFEST.replace("interval_minutes: 5", 'schedule_type: weekly\n        time_of_day: "03:00"\n'
                                   "        day_of_week: 3")


@pytest.fixture
async def store(tmp_path):
    opened = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def provider(monkeypatch):
    with ProviderServer(api_key="test-key") as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


async def install_app(store, provider_name: str):
    manifest = parse_manifest(MANIFEST)
    await store.tenants.upsert(tenant=TENANT, timezone="UTC", provider=provider_name)
    await store.records.put(tenant=TENANT, app="marketing", record_type="kpi", record_id="signups",
                           data={"metric": "signups", "value": 182, "target": 250})
    await store.apps.record(tenant=TENANT, app="marketing", name="marketing", version="1", manifest=manifest_json(manifest),
                           manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
    return manifest


async def start(client, manifest):
    config = HeartbeatConfig(tenant=TENANT, app="marketing", agent="cmo", heartbeat=manifest.agents[0].heartbeats[0])
    return await client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config), id=config.workflow_id,
                                       task_queue=TASK_QUEUE)


async def newest_receipts(store, count: int, timeout: float = 20) -> list[dict]:
    for _ in range(int(timeout * 10)):
        receipts = jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=HEARTBEAT_ID, limit=100))
        if len(receipts) >= count:
            return receipts
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} receipts after {timeout}s")


# Reading the two wire formats the same way.
def system_text(api: str, body: dict) -> str:
    return json.dumps(body["system"]) if api == "anthropic" else body["messages"][0]["content"]


def tool_names(api: str, body: dict) -> set[str]:
    return {tool["name"] if api == "anthropic" else tool["function"]["name"] for tool in body["tools"]}


def tool_results(api: str, body: dict) -> list[tuple[str, str]]:
    if api == "openai":
        return [(m["tool_call_id"], m["content"]) for m in body["messages"] if m["role"] == "tool"]
    return [(block["tool_use_id"], json.dumps(block["content"])) for m in body["messages"]
            if m["role"] == "user" and isinstance(m["content"], list)
            for block in m["content"] if block.get("type") == "tool_result"]


def script(server: ProviderServer, api: str, *replies) -> None:
    getattr(server, f"script_{api}")(*replies)


APIS = ["openai", "anthropic"]


@pytest.mark.parametrize("api", APIS)
async def test_run_now_sends_context_runs_tools_and_suppresses_heartbeat_ok(store, provider, api):
    manifest = await install_app(store, api)
    script(provider, api, tool_reply(("call_1", "records__query", {"record_type": "kpi"})), text_reply("HEARTBEAT_OK"))
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, manifest)
        await handle.signal(HeartbeatWorkflow.run_now)
        receipt = (await newest_receipts(store, 1))[0]
        view = await handle.query(HeartbeatWorkflow.status)
    first, second = (request.body for request in provider.requests_to(api))
    assert "You are the CMO of an AI-first marketing org." in system_text(api, first)
    sent = json.dumps(first["messages"])
    assert "Review KPI delta, escalate if off-pace." in sent and "signups" in sent and "182" in sent
    assert tool_names(api, first) >= {"records__query", "email__send"}
    [(call_id, content)] = tool_results(api, second)
    assert call_id == "call_1" and "signups" in content  # the tool ran and its result went back
    assert (receipt["trigger"], receipt["outcome"], receipt["provider"]) == ("run_now", "suppressed", api)
    assert receipt["model"] == first["model"]
    assert (receipt["tokens_in"], receipt["tokens_out"]) == (22, 14)  # two calls of 11 in / 7 out
    assert view.last_heartbeat_ok_at is not None


async def escalate_then_vision_pass(store, provider, api: str, *replies) -> tuple[dict, dict]:
    """A run-now tick whose scripted reply escalates, then the vision pass 30 s later (the app's
    heartbeat is weekly, so the 45 s skipped hold no scheduled tick): (receipt, vision status)."""
    await install_app(store, api)
    script(provider, api, *replies)
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, parse_manifest(WEEKLY_MANIFEST))
        await handle.signal(HeartbeatWorkflow.run_now)
        receipt = (await newest_receipts(store, 1))[0]
        await env.sleep(timedelta(seconds=45))
        vision = env.client.get_workflow_handle(vision_workflow_id(TENANT, "marketing", "cmo"))
        return receipt, await vision.query("status")


@pytest.mark.parametrize("api", APIS)
async def test_escalation_is_substantive_and_wakes_the_vision_loop(store, provider, api):
    receipt, vision_status = await escalate_then_vision_pass(
        store, provider, api,
        text_reply("Signups are 27% under target this week. <escalate-to-vision/>"),
        text_reply("Assessment: the signup funnel broke after the pricing change."),
        text_reply("Plan: 1. revert pricing page copy. 2. ask content_drafter for a launch post."),
        text_reply("Act now: brief the team; heartbeats watch signups daily."))
    assert (receipt["outcome"], receipt["escalated"], receipt["provider"]) == ("substantive", True, api)
    heartbeat_call, *vision_calls = provider.requests_to(api)
    assert "You are the CMO" in system_text(api, heartbeat_call.body)
    assert len(vision_calls) == 3 and vision_status["passes"] == 1
    assert {call.body["model"] for call in vision_calls} != {heartbeat_call.body["model"]}  # premium tier
    plans = jsonable(await store.memory.query(tenant=TENANT, app="marketing", agent="cmo", kind="vision_plan",
                                     now=datetime.now(UTC)))
    assert len(plans) == 1 and "revert pricing page copy" in plans[0]["content"]
    messages = jsonable(await store.conversations.messages(
        tenant=TENANT, conversation_id=await store.conversations.id_for(tenant=TENANT, app="marketing", agent="cmo",
                                                                   mode="dedicated")))
    assert [m["content"] for m in messages] == ["Signups are 27% under target this week."]


@pytest.mark.parametrize("api", APIS)
async def test_a_vision_phase_runs_the_tools_it_asks_for(store, provider, api):
    """A vision phase is a durable turn: the tool the model asks for runs as an activity, its result
    goes back to the model, and the phase's answer is the reply after it (not an empty plan)."""
    await escalate_then_vision_pass(
        store, provider, api,
        text_reply("Signups are off pace. <escalate-to-vision/>"),
        tool_reply(("call_v1", "records__query", {"record_type": "kpi"})),
        text_reply("Assessment: signups at 182 of 250."),
        text_reply("Plan: 1. fix the funnel."),
        text_reply("Act now: brief the team."))
    _, asked, answered, *_ = provider.requests_to(api)
    assert tool_names(api, asked.body) >= {"records__query", "email__send"}  # the agent's tools are offered
    [(call_id, content)] = tool_results(api, answered.body)
    assert call_id == "call_v1" and "182" in content
    [plan] = jsonable(await store.memory.query(tenant=TENANT, app="marketing", agent="cmo", kind="vision_plan",
                                               now=datetime.now(UTC)))
    assert plan["content"] == "Plan: 1. fix the funnel."
    assert plan["data"]["assess"] == "Assessment: signups at 182 of 250."


@pytest.mark.parametrize("api", APIS)
async def test_401_fails_each_tick_and_the_fifth_disables(store, provider, monkeypatch, api):
    monkeypatch.setenv("OPENAI_API_KEY" if api == "openai" else "ANTHROPIC_API_KEY", "wrong-key-0123456789")
    manifest = await install_app(store, api)
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, manifest)
        started = (await handle.describe()).start_time
        fires = upcoming_fires(manifest.agents[0].heartbeats[0], tenant_id=TENANT, after=started, count=6)
        await env.sleep(fires[4] + timedelta(seconds=30) - await env.get_current_time())
        view = await handle.query(HeartbeatWorkflow.status)
        receipts = list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=HEARTBEAT_ID, limit=100))))
    assert [(r["outcome"], r["reason"]) for r in receipts] == [("failed", "ProviderAuthError")] * 5
    assert all("wrong-key-0123456789" not in (r["error"] or "") for r in receipts)
    assert (view.status, view.failure_count) == ("disabled", 5)
    assert len(provider.requests_to(api)) == 5  # 401 is not retried


async def test_a_turn_that_never_ends_fails_at_the_step_limit(store, provider):
    manifest = await install_app(store, "openai")
    provider.fallback = tool_reply(("records__query", {"record_type": "kpi"}))  # asks for tools forever
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, manifest)
        await handle.signal(HeartbeatWorkflow.run_now)
        receipt = (await newest_receipts(store, 1))[0]
    assert (receipt["outcome"], receipt["reason"]) == ("failed", "max_steps")
    assert len(provider.requests_to("openai")) == MAX_AGENT_STEPS


async def test_a_reply_cut_at_the_token_cap_fails_the_tick(store, provider):
    manifest = await install_app(store, "openai")
    provider.script_openai(text_reply("The KPIs this week show that", stop="length"))
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, manifest)
        await handle.signal(HeartbeatWorkflow.run_now)
        receipt = (await newest_receipts(store, 1))[0]
    assert (receipt["outcome"], receipt["reason"]) == ("failed", "token_cap")
    assert provider.requests_to("openai")[0].body.get("max_tokens", provider.requests_to("openai")[0].body.get(
        "max_completion_tokens")) == MAX_TOKENS_PER_CALL


async def test_escalations_within_the_delay_coalesce_into_one_vision_pass(store):
    await store.tenants.upsert(tenant=TENANT, timezone="UTC", provider="offline")
    from contract.names import SIGNAL_ESCALATE
    from contract.vision import VisionInput

    async with time_skipping_env() as env, running_worker(env.client, store):
        for reason in ("signups off pace", "CAC rising", "churn spike"):
            handle = await env.client.start_workflow(
                "VisionWorkflow", VisionInput(tenant=TENANT, app="marketing", agent="cmo"),
                id=vision_workflow_id(TENANT, "marketing", "cmo"), task_queue=TASK_QUEUE,
                start_signal=SIGNAL_ESCALATE, start_signal_args=[reason])
            await env.sleep(timedelta(seconds=5))
        await env.sleep(timedelta(seconds=40))
        status = await handle.query("status")
    plans = jsonable(await store.memory.query(tenant=TENANT, app="marketing", agent="cmo", kind="vision_plan",
                                     now=datetime.now(UTC)))
    assert status["passes"] == 1 and len(plans) == 1


async def test_a_commitment_made_in_one_tick_is_acted_on_when_due(store, provider):
    manifest = parse_manifest(WEEKLY_MANIFEST + """      - slug: review_commitments
        skill: _internal_agent_memory
        tool: query
        params: {kind: commitment}
        interval_minutes: 60
""")
    await install_app(store, "openai")
    await store.apps.record(tenant=TENANT, app="marketing", name="marketing", version="2",
                           manifest=manifest_json(manifest), manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
    provider.script_openai(text_reply("Signups are low. I'll follow up tomorrow with the content drafter."),
                           text_reply("Followed up: asked content_drafter for a launch post."))
    kpi, review = manifest.agents[0].heartbeats
    review_id = heartbeat_workflow_id(TENANT, "marketing", "cmo", "review_commitments")
    async with time_skipping_env() as env, running_worker(env.client, store):
        config = HeartbeatConfig(tenant=TENANT, app="marketing", agent="cmo", heartbeat=review)
        await env.client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config), id=review_id,
                                        task_queue=TASK_QUEUE)
        made = await env.get_current_time()
        # "tomorrow" is due at 09:00 the next day: run until six hours past it, whatever time it is now.
        due = datetime.combine((made + timedelta(days=1)).date(), datetime.min.time(), UTC).replace(hour=9)
        handle = await start(env.client, manifest)  # hourly_kpi
        await handle.signal(HeartbeatWorkflow.run_now)
        await newest_receipts(store, 1)
        # Its weekly tick may fall in the day ahead (on a Wednesday): paused, it calls no model.
        await handle.signal(HeartbeatWorkflow.pause)
        await env.sleep(due + timedelta(hours=6) - made)
        receipts = list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=review_id, limit=1000))))
    acted = [r for r in receipts if r["outcome"] == "substantive"]
    assert len(acted) == 1 and "Followed up" in acted[0]["reply"]  # acted on once, then done
    acted_at = datetime.fromisoformat(acted[0]["at"].replace("Z", "+00:00"))
    assert due <= acted_at < due + timedelta(hours=1)  # the first review tick after it fell due
    assert {r["reason"] for r in receipts if r is not acted[0]} == {"prefilter_empty"}


async def test_worker_killed_between_tool_call_and_next_llm_call_sends_one_email(tmp_path, provider):
    """SIGKILL a real worker process after the email tool ran, before the turn finished."""
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = await open_store(db_url)
    manifest = await install_app(store, "openai")
    send = ("call_mail", "email__send", {"to": "ada@example.com", "subject": "Follow-up", "body": "Hi Ada"})
    provider.script_openai(tool_reply(send))
    provider.fallback = text_reply("Sent Ada the follow-up.", delay=2.0)  # every later LLM call
    async with dev_server(tmp_path) as (client, address):
        env = {**os.environ, **provider.env(), "TEMPORAL_ADDRESS": address, "HEARTBEATS_DATABASE_URL": db_url}

        def worker() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, str(REPO / "worker.py")], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        first = worker()
        try:
            await install_manifests(client, store, [LoadedManifest(Path("m.yaml"), manifest)], tenant=TENANT)
            await client.get_workflow_handle(HEARTBEAT_ID).signal("run_now")
            for _ in range(300):
                if jsonable(await store.outbox.list(tenant=TENANT, app="marketing")):
                    break
                await asyncio.sleep(0.1)
            first.send_signal(signal.SIGKILL)  # the email went out; the next LLM call is in flight
            first.wait()
            second = worker()
            try:
                receipt = (await newest_receipts(store, 1, timeout=60))[0]
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        outbox = jsonable(await store.outbox.list(tenant=TENANT, app="marketing"))
        view = await client.get_workflow_handle(HEARTBEAT_ID).describe()
    await store.close()
    assert len(outbox) == 1 and outbox[0]["to"] == "ada@example.com"
    assert (receipt["outcome"], receipt["trigger"]) == ("substantive", "run_now")
    assert view.status.name == "RUNNING"


@pytest.mark.parametrize(("mode", "remembers"), [("dedicated", True), ("isolated", False)])
async def test_dedicated_mode_carries_the_thread_isolated_does_not(store, provider, mode, remembers):
    manifest = parse_manifest(MANIFEST.replace("invoke_always: true", f"invoke_always: true\n        conversation_mode: {mode}"))
    await install_app(store, "openai")
    await store.apps.record(tenant=TENANT, app="marketing", name="marketing", version="2",
                           manifest=manifest_json(manifest), manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
    provider.script_openai(text_reply("Signups 182 vs 250: asked the drafter for a post."), text_reply("HEARTBEAT_OK"))
    async with time_skipping_env() as env, running_worker(env.client, store):
        handle = await start(env.client, manifest)
        await handle.signal(HeartbeatWorkflow.run_now)
        await newest_receipts(store, 1)
        await handle.signal(HeartbeatWorkflow.run_now)
        await newest_receipts(store, 2)
    second = provider.requests_to("openai")[1].body
    earlier = [m for m in second["messages"] if m["role"] == "assistant"]
    assert bool(earlier) is remembers
    if remembers:
        assert earlier[0]["content"] == "Signups 182 vs 250: asked the drafter for a post."
