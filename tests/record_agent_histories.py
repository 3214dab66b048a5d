"""Record the agent-turn and vision histories that tests/test_replay.py replays:
`python -m tests.record_agent_histories`.

A heartbeat on the time-skipping server runs one run-now tick through the durable agent turn, with
the real OpenAI SDK talking to the loopback provider server: an LLM call asking for a tool, the tool
call, a second LLM call whose reply escalates to vision. The woken VisionWorkflow then runs its
assess → plan → act pass, whose assess phase asks for a tool too. Both histories are written to
tests/histories/ as heartbeat_agent_turn.v3 and vision_pass.v3. Earlier code's recordings (no
suffix, .v2) stay: every one must keep replaying. Re-record only on purpose, under a new suffix.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from client.install import installed_hash, manifest_json
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import TASK_QUEUE, vision_workflow_id
from drills.provider_server import ProviderServer, text_reply, tool_reply
from manifest.loader import parse_manifest
from store import open_store
from tests.temporal_env import running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

OUT = Path(__file__).parent / "histories"
# v2: vision phases as durable turns (workflow.patched "vision-phases-are-turns"); v3: model calls on
# the LLM task queue (workflow.patched "llm-calls-on-their-own-task-queue").
SUFFIX = "v3"
MANIFEST = """\
id: marketing
agents:
  - id: cmo
    system_prompt: You are the CMO.
    tools: [records, email]
    heartbeats:
      - slug: hourly_kpi
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 60
"""


async def record() -> None:
    manifest = parse_manifest(MANIFEST)
    with ProviderServer(api_key="recording-key") as provider, tempfile.TemporaryDirectory() as folder:
        os.environ.update(provider.env())
        provider.script_openai(
            tool_reply(("call_1", "records__query", {"record_type": "kpi"})),
            text_reply("Signups are 27% under target. <escalate-to-vision/>"),
            tool_reply(("call_v1", "records__query", {"record_type": "kpi"})),
            text_reply("Assessment: the funnel broke."), text_reply("Plan: 1. fix the page."),
            text_reply("Act: brief the team."))
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.tenants.upsert(tenant="acme", timezone="UTC", provider="openai")
        await store.records.put(tenant="acme", app="marketing", record_type="kpi", record_id="signups",
                               data={"metric": "signups", "value": 182, "target": 250})
        await store.apps.record(tenant="acme", app="marketing", name="marketing", version="1",
                               manifest=manifest_json(manifest),
                               manifest_hash=installed_hash(manifest_json(manifest), "UTC"))
        async with time_skipping_env() as env, running_worker(env.client, store):
            config = HeartbeatConfig(tenant="acme", app="marketing", agent="cmo",
                                     heartbeat=manifest.agents[0].heartbeats[0])
            handle = await env.client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config),
                                                     id=config.workflow_id, task_queue=TASK_QUEUE)
            await handle.signal(HeartbeatWorkflow.run_now)
            for _ in range(200):
                if await store.receipts.list(tenant="acme", heartbeat_id=config.workflow_id, limit=5):
                    break
                await asyncio.sleep(0.1)
            await env.sleep(timedelta(seconds=45))  # the vision pass, 30 s after the escalation
            vision = env.client.get_workflow_handle(vision_workflow_id("acme", "marketing", "cmo"))
            assert (await vision.query("status"))["passes"] == 1
            await handle.query(HeartbeatWorkflow.status)
            for name, target in (("heartbeat_agent_turn", handle), ("vision_pass", vision)):
                history = await target.fetch_history()
                text = history.to_json()
                assert "recording-key" not in text
                (OUT / f"{name}.{SUFFIX}.json").write_text(text)
                print(f"wrote {name}: {len(history.events)} events")
            await handle.cancel()
            await vision.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
