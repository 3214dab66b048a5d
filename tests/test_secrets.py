"""Secrets and size: API keys never reach workflow history, receipts or logs; what enters history
from one tick stays far below Temporal's payload limits, even when 100,000 records match.

The keys are recognisable strings; ticks run through the real SDKs against the loopback provider
server on the time-skipping server (a tool call, a final reply, and a 401 refused key). Then the
exported histories (fetch_history → to_json), every receipt and all captured log output (DEBUG
and up, the SDKs' loggers included) are searched for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from activities.prefilter import run_prefilter
from client.install import installed_hash, manifest_json
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.messages import MAX_PREFILTER_BYTES, MAX_PREFILTER_ROWS, PrefilterRequest, TickRef
from contract.names import TASK_QUEUE, heartbeat_workflow_id
from drills.provider_server import ProviderServer, text_reply, tool_reply
from manifest.loader import parse_manifest
from skills.catalog import default_registry
from store import open_store
from tests.store_json import jsonable
from tests.temporal_env import running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

OPENAI_KEY = "sk-proj-SECRETopenai0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-SECRETanthropic0123456789"
WRONG_KEY = "sk-ant-api03-SECRETwrong-refused-0123456789"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, WRONG_KEY, "SECRET")
# Temporal's defaults: a payload errors at 2 MiB, warns at 512 KiB; history at 50 MiB.
TEMPORAL_PAYLOAD_WARN_BYTES = 512 * 1024

MANIFEST = """\
id: marketing
agents:
  - id: cmo
    system_prompt: You are the CMO.
    tools: [records, email]
    heartbeats:
      - slug: kpi
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 5
        invoke_always: true
"""


async def install(store, tenant: str, provider: str):
    manifest = parse_manifest(MANIFEST)
    await store.tenants.upsert(tenant=tenant, timezone="UTC", provider=provider)
    await store.records.put(tenant=tenant, app="marketing", record_type="kpi", record_id="signups",
                           data={"metric": "signups", "value": 182})
    await store.apps.record(tenant=tenant, app="marketing", name="marketing", version="1",
                           manifest=manifest_json(manifest), manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
    return manifest


async def wait_receipts(store, tenant: str, count: int) -> list[dict]:
    heartbeat = heartbeat_workflow_id(tenant, "marketing", "cmo", "kpi")
    for _ in range(300):
        receipts = jsonable(await store.receipts.list(tenant=tenant, heartbeat_id=heartbeat, limit=100))
        if len(receipts) >= count:
            return receipts
        await asyncio.sleep(0.1)
    raise AssertionError(f"{tenant}: fewer than {count} receipts")


def readable(history_json: str) -> str:
    """A history export with every payload decoded: to_json() keeps payload data base64-encoded,
    so a plain search of it would find nothing even if a key were there."""
    import base64

    decoded: list[str] = [history_json]

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    try:
                        decoded.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))
                    except ValueError:
                        decoded.append(value)
                elif key == "metadata" and isinstance(value, dict):
                    decoded.extend(base64.b64decode(v).decode("utf-8", "replace") for v in value.values()
                                   if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(history_json))
    return "\n".join(decoded)


async def test_api_keys_never_reach_history_receipts_or_logs(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with ProviderServer(api_key=OPENAI_KEY) as provider:
        monkeypatch.setenv("OPENAI_BASE_URL", provider.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", provider.anthropic_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("ANTHROPIC_API_KEY", WRONG_KEY)  # the server expects OPENAI_KEY: a 401
        provider.script_openai(tool_reply(("call_1", "records__query", {"record_type": "kpi"})),
                               text_reply("Signups are 182; I sent nothing."))
        store = await open_store(f"sqlite:///{tmp_path / 's.db'}")
        try:
            manifest = await install(store, "good", "openai")
            await install(store, "refused", "anthropic")
            spec = manifest.agents[0].heartbeats[0]
            async with time_skipping_env() as env, running_worker(env.client, store):
                handles = []
                for tenant in ("good", "refused"):
                    config = HeartbeatConfig(tenant=tenant, app="marketing", agent="cmo", heartbeat=spec)
                    handle = await env.client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config),
                                                             id=config.workflow_id, task_queue=TASK_QUEUE)
                    await handle.signal(HeartbeatWorkflow.run_now)
                    handles.append(handle)
                receipts = await wait_receipts(store, "good", 1) + await wait_receipts(store, "refused", 1)
                histories = [readable((await handle.fetch_history()).to_json()) for handle in handles]
        finally:
            await store.close()
        seen_keys = {request.api_key for request in provider.requests}
    assert OPENAI_KEY in seen_keys and WRONG_KEY in seen_keys  # the keys really were used on the wire
    outcomes = {r["outcome"] for r in receipts}
    assert outcomes == {"substantive", "failed"}, receipts
    failed = next(r for r in receipts if r["outcome"] == "failed")
    assert "401" in (failed["error"] or "") or "auth" in (failed["error"] or "").lower(), failed
    logs = "\n".join(f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records)
    logs += caplog.text
    assert "records__query" in "".join(histories) and len(caplog.records) > 10  # we searched the real thing
    for secret in SECRETS:
        for name, text in (("history", "".join(histories)), ("receipts", json.dumps(receipts, default=str)),
                           ("logs", logs)):
            assert secret not in text, f"{secret!r} found in {name}"


async def test_100000_matching_records_stay_within_the_prefilter_caps(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'big.db'}")
    try:
        await store.tenants.upsert(tenant="acme", timezone="UTC")
        now = datetime.now(UTC)
        from store.records import app_records

        rows = [{"tenant_id": "acme", "app_id": "crm", "record_type": "lead", "record_id": f"l{i:06d}", "key": f"lead:l{i:06d}",
                 "data": {"status": "open", "name": f"Lead {i}", "notes": "x" * (200 + i % 3000)},
                 "created_at": now, "updated_at": now} for i in range(100_000)]
        async with store.engine.begin() as conn:  # bulk: 100,000 put_record calls would take minutes
            for start in range(0, len(rows), 10_000):
                await conn.execute(insert(app_records), rows[start:start + 10_000])
        tick = TickRef(heartbeat_id="heartbeat:acme:crm:bot:leads", tenant="acme", app="crm", agent="bot",
                       slug="leads", tick_id="run/1", at=now, trigger="schedule")
        for params in ({"record_type": "lead"}, {"record_type": "lead", "status": "open"}):
            found = await run_prefilter(store, default_registry(), PrefilterRequest(
                tick=tick, skill="_internal_app_records", tool="query", params=params, invoke_always=False))
            payload = found.model_dump_json().encode()
            assert found.truncated and 0 < len(found.rows) <= MAX_PREFILTER_ROWS
            assert len(json.dumps(found.rows, separators=(",", ":")).encode()) <= MAX_PREFILTER_BYTES
            assert len(payload) < MAX_PREFILTER_BYTES + 4096 < TEMPORAL_PAYLOAD_WARN_BYTES
    finally:
        await store.close()


@pytest.mark.parametrize("text", ["y" * 100_000, "é" * 50_000])
def test_replies_and_errors_entering_history_are_capped(text):
    from temporalio.exceptions import ApplicationError

    from activities.tools import cap_result
    from contract.messages import MAX_ERROR_CHARS, MAX_REPLY_CHARS, AgentReply
    from workflows.failures import error_text as _error_text

    assert len(cap_result(text)) <= 8_000
    assert len(_error_text(ApplicationError(text))) <= MAX_ERROR_CHARS
    reply = AgentReply(text=text[:MAX_REPLY_CHARS], provider="openai", model="m")
    assert len(reply.model_dump_json().encode()) < TEMPORAL_PAYLOAD_WARN_BYTES
