"""Record the event-handler histories that tests/test_replay.py replays:
`python -m tests.record_handler_histories`.

On a dev server (update-with-start needs one), with the offline provider:
- `chat_run`: ChatWorkflow answering two chat messages (update-with-start, then an update to the
  running workflow), the same message id again (answered from the first), then cancelled;
- `inbound_run`: InboundWorkflow handling one inbound message.
Re-record only on purpose, under a new suffix: every earlier recording must keep replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from temporalio.client import WorkflowFailureError

from client.checks import LoadedManifest
from client.handlers import inbound_message, send_chat, send_inbound
from client.sync import install_manifests
from contract.names import chat_workflow_id
from manifest.loader import parse_manifest
from store import open_store
from tests.temporal_env import dev_server, running_worker

OUT = Path(__file__).parent / "histories"
MANIFEST = """\
id: shop
agents:
  - id: helper
    system_prompt: You help shoppers.
    on_chat: {prompt: Answer in one sentence.}
    on_inbound: {prompt: Triage this message., conversation_mode: main}
"""


async def record() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.tenants.upsert(tenant="acme", timezone="Europe/Berlin")
        async with dev_server(Path(folder)) as (client, _), running_worker(client, store):
            await install_manifests(client, store, [LoadedManifest(Path("shop.yaml"), parse_manifest(MANIFEST))],
                                    tenant="acme")
            where = dict(tenant="acme", app="shop", agent="helper")
            await send_chat(client, store, **where, text="When do orders ship?", message_id="m-1")
            await send_chat(client, store, **where, text="And returns?", message_id="m-2")
            await send_chat(client, store, **where, text="When do orders ship?", message_id="m-1")
            chat = client.get_workflow_handle(chat_workflow_id("acme", "shop", "helper"))
            await chat.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await chat.result()
            accepted = await send_inbound(client, store, **where, message=inbound_message(
                id="<m-9@mail.example>", sender="ada@example.com", subject="Refund", text="Please refund order 9."))
            inbound = client.get_workflow_handle(accepted.workflow_id)
            await inbound.result()
            for name, handle in (("chat_run", chat), ("inbound_run", inbound)):
                history = await handle.fetch_history()
                (OUT / f"{name}.json").write_text(history.to_json())
                print(f"wrote {name}: {len(history.events)} events")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
