"""Record the shadow-mode history that tests/test_replay.py replays: `python -m tests.record_shadow_histories`.

`task_shadow_run`: a TaskWorkflow in shadow mode on a dev server, through the real OpenAI SDK to the
loopback server: a manual case whose turn asks for email.send (recorded, not executed) and kv.get
(run), then a reply; then cancelled. Re-record only on purpose, under a new suffix: every earlier
recording must keep replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from temporalio.client import WorkflowFailureError

from client.checks import LoadedManifest
from client.operations import heartbeat_runs, run_task_now
from client.sync import install_manifests
from contract.names import task_workflow_id
from contract.task import ManualRun
from drills.provider_server import ProviderServer, text_reply, tool_reply
from manifest.loader import parse_manifest
from store import open_store
from tests.temporal_env import dev_server, running_worker

OUT = Path(__file__).parent / "histories"
MANIFEST = """\
id: support
agents:
  - id: reviewer
    tools: [email, kv]
    tasks:
      - slug: answer
        prompt: Answer the customer of each case.
        dedupe: {key: case_id}
        shadow_mode: true
        triggers: [{type: manual}]
"""


async def record() -> None:
    with tempfile.TemporaryDirectory() as folder, ProviderServer(api_key="test-key") as provider:
        os.environ.update(provider.env())
        provider.script_openai(
            tool_reply(("e1", "email__send", {"to": "ada@example.com", "subject": "Hi", "body": "Hello"}),
                       ("k1", "kv__get", {"key": "x"})),
            text_reply("Answered Ada."))
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.tenants.upsert(tenant="acme", timezone="UTC", provider="openai")
        workflow_id = task_workflow_id("acme", "support", "reviewer", "answer")
        async with dev_server(Path(folder)) as (client, _), running_worker(client, store):
            await install_manifests(client, store, [LoadedManifest(Path("s.yaml"), parse_manifest(MANIFEST))],
                                    tenant="acme")
            await run_task_now(client, workflow_id, ManualRun(payload={"case_id": "c1"}))
            while not await heartbeat_runs(store, workflow_id, limit=1):
                await asyncio.sleep(0.1)
            handle = client.get_workflow_handle(workflow_id)
            await handle.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
            history = await handle.fetch_history()
            (OUT / "task_shadow_run.json").write_text(history.to_json())
            print(f"wrote task_shadow_run: {len(history.events)} events")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
