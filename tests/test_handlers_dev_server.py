"""Event handlers on a real dev server, with a real worker whose agent turns go through the real
OpenAI SDK to a loopback server speaking its wire format.

- a chat message is answered, and the second chat's model call carries the first exchange (the main
  conversation), where a heartbeat in `main` mode posts too;
- the same chat message id is answered once;
- a slow model: the caller gets TimedOut, and the turn still completes and is recorded;
- an inbound message runs one turn with the handler's prompt; the same id again runs nothing;
- an agent without a handler refuses (Conflict), an unknown agent is NotFound;
- uninstalling the app leaves no chat or inbound workflow running.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from temporalio.client import WorkflowExecutionStatus

from client.checks import LoadedManifest
from client.handlers import conversation, inbound_message, send_chat, send_inbound
from client.operations import heartbeat_runs
from client.sync import install_manifests, uninstall_apps
from contract.errors import Conflict, InvalidInput, NotFound, TimedOut
from contract.names import chat_workflow_id, heartbeat_workflow_id
from drills.provider_server import ProviderServer, text_reply
from manifest.loader import parse_manifest
from store import Store, open_store
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "shop"
MANIFEST = """\
id: shop
agents:
  - id: helper
    system_prompt: You help shoppers.
    on_chat: {prompt: Answer in one sentence., model_tier: cheap}
    on_inbound: {prompt: Triage this message and say who should handle it., conversation_mode: main}
    heartbeats:
      - slug: nudge
        skill: _internal_app_records
        tool: query
        params: {record_type: order}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 3
        invoke_always: true
        conversation_mode: main
        prompt: Any orders to nudge?
  - id: mute
    system_prompt: You take no messages.
"""
CHAT = chat_workflow_id(TENANT, APP, "helper")
NUDGE = heartbeat_workflow_id(TENANT, APP, "helper", "nudge")


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "Noted.") as server:
        yield server


@pytest.fixture
async def store(tmp_path):
    async with tenant_store(tmp_path, TENANT, timezone="Europe/Berlin") as opened:
        yield opened


async def wait_for(check, what: str, timeout: float = 60):
    for _ in range(int(timeout * 10)):  # a guard against waiting forever, not a speed requirement
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def closed(client, workflow_id: str) -> WorkflowExecutionStatus | None:
    async def status():
        found = (await client.get_workflow_handle(workflow_id).describe()).status
        return found if found != WorkflowExecutionStatus.RUNNING else None
    return await wait_for(status, f"{workflow_id} to close")


def sent_messages(provider: ProviderServer, index: int = -1) -> list[dict]:
    return provider.requests_to("openai")[index].body["messages"]


async def cli(monkeypatch, address: str, url: str, *args: str, exit_code: int = 0) -> str:
    from cli.main import cli as heartbeats

    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    result = await asyncio.to_thread(CliRunner().invoke, heartbeats, list(args))
    assert result.exit_code == exit_code, result.output
    return result.output


async def test_chat_and_inbound_end_to_end(tmp_path, store, provider, monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    async with dev_server(tmp_path) as (client, address), running_worker(client, store):
        await install_manifests(client, store, [LoadedManifest(Path("shop.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)

        # A chat is answered; the handler's prompt is in the system prompt.
        provider.script_openai(text_reply("Orders ship in two days."))
        first = await send_chat(client, store, tenant=TENANT, app=APP, agent="helper",
                                text="When do orders ship?", message_id="m-1")
        assert (first.reply, first.message_id) == ("Orders ship in two days.", "m-1")
        assert "Answer in one sentence." in sent_messages(provider)[0]["content"]

        # A heartbeat in main mode posts into the same conversation.
        provider.script_openai(text_reply("Nudged order 7."))
        await client.get_workflow_handle(NUDGE).signal("run_now")
        await wait_for(lambda: heartbeat_runs(store, NUDGE, limit=5), "the heartbeat's receipt")

        # The second chat's model call sees the first exchange and the heartbeat's post.
        provider.script_openai(text_reply("Yes, order 7 was nudged."))
        second = await send_chat(client, store, tenant=TENANT, app=APP, agent="helper", text="Anything new?")
        assert second.reply == "Yes, order 7 was nudged."
        seen = json.dumps(sent_messages(provider))
        for earlier in ("When do orders ship?", "Orders ship in two days.", "Nudged order 7.", "Anything new?"):
            assert earlier in seen

        # The same message id again: answered once (the update's result), no second model call.
        calls = len(provider.requests_to("openai"))
        again = await send_chat(client, store, tenant=TENANT, app=APP, agent="helper",
                                text="When do orders ship?", message_id="m-1")
        assert again.reply == first.reply and len(provider.requests_to("openai")) == calls

        thread = await conversation(store, tenant=TENANT, app=APP, agent="helper")
        assert [(m.role, m.content) for m in thread] == [
            ("user", "When do orders ship?"), ("assistant", "Orders ship in two days."),
            ("assistant", "Nudged order 7."),
            ("user", "Anything new?"), ("assistant", "Yes, order 7 was nudged.")]
        chats = await heartbeat_runs(store, CHAT, limit=10)
        assert sorted((r.trigger, r.outcome) for r in chats) == [("chat", "substantive")] * 2

        # A slow model: the caller stops waiting, the turn completes and is recorded.
        provider.script_openai(text_reply("Sorry for the wait: all good.", delay=4))
        with pytest.raises(TimedOut, match="still answering"):
            await send_chat(client, store, tenant=TENANT, app=APP, agent="helper", text="Status?",
                            message_id="slow-1", wait_seconds=1.5)

        async def answered():
            found = await conversation(store, tenant=TENANT, app=APP, agent="helper")
            return found[-1].content == "Sorry for the wait: all good." and found
        await wait_for(answered, "the slow reply in the conversation")
        assert len(await heartbeat_runs(store, CHAT, limit=10)) == 3

        # An inbound message: one turn with the handler's prompt; the same id again runs nothing.
        provider.script_openai(text_reply("Billing should handle it."))
        message = inbound_message(id="<abc@mail.example>", sender="ada@example.com", subject="Refund",
                                  text="Please refund order 9.")
        accepted = await send_inbound(client, store, tenant=TENANT, app=APP, agent="helper", message=message)
        assert not accepted.duplicate
        await closed(client, accepted.workflow_id)
        [ran] = await heartbeat_runs(store, accepted.workflow_id, limit=5)
        assert (ran.trigger, ran.outcome) == ("inbound", "substantive")
        asked = json.dumps(sent_messages(provider))
        assert "Triage this message" in asked and "Please refund order 9." in asked
        calls = len(provider.requests_to("openai"))
        duplicate = await send_inbound(client, store, tenant=TENANT, app=APP, agent="helper", message=message)
        assert (duplicate.duplicate, duplicate.workflow_id) == (True, accepted.workflow_id)
        await asyncio.sleep(1)
        assert len(provider.requests_to("openai")) == calls
        assert len(await heartbeat_runs(store, accepted.workflow_id, limit=5)) == 1
        thread = await conversation(store, tenant=TENANT, app=APP, agent="helper")
        assert thread[-2].role == "inbound" and "Please refund order 9." in thread[-2].content

        # Refusals.
        with pytest.raises(Conflict, match="no on_chat"):
            await send_chat(client, store, tenant=TENANT, app=APP, agent="mute", text="Hi")
        with pytest.raises(Conflict, match="no on_inbound"):
            await send_inbound(client, store, tenant=TENANT, app=APP, agent="mute", message=message)
        with pytest.raises(NotFound):
            await send_chat(client, store, tenant=TENANT, app=APP, agent="nobody", text="Hi")
        with pytest.raises(InvalidInput, match="text"):
            await send_chat(client, store, tenant=TENANT, app=APP, agent="helper", text="x" * 8_001)

        # The CLI: chat prints the reply, conversation the thread, inbound send the workflow.
        provider.script_openai(text_reply("From the CLI: fine."))
        assert (await cli(monkeypatch, address, url, "chat", "--tenant", TENANT, "--app", APP, "--agent", "helper",
                          "How are you?")).strip() == "From the CLI: fine."
        listed = json.loads(await cli(monkeypatch, address, url, "conversation", "--tenant", TENANT, "--app", APP,
                                      "--agent", "helper", "--json"))
        assert [m["content"] for m in listed[-2:]] == ["How are you?", "From the CLI: fine."]
        sent = json.loads(await cli(monkeypatch, address, url, "inbound", "send", "--tenant", TENANT, "--app", APP,
                                    "--agent", "helper", "--id", "cli-1", "--from", "bob@example.com", "Hello",
                                    "--json"))
        assert sent["duplicate"] is False and sent["workflow_id"].startswith(f"inbound:{TENANT}:{APP}:helper:m")
        refused = await cli(monkeypatch, address, url, "chat", "--tenant", TENANT, "--app", APP, "--agent", "mute",
                            "Hi", exit_code=1)
        assert refused.startswith("error: ") and "no on_chat" in refused and "Traceback" not in refused

        # Uninstall: the chat workflow ends, and the agent takes no more messages.
        await uninstall_apps(client, store, tenant=TENANT, apps=[APP])
        assert await closed(client, CHAT) == WorkflowExecutionStatus.CANCELED
        with pytest.raises(NotFound, match="not installed"):
            await send_chat(client, store, tenant=TENANT, app=APP, agent="helper", text="Hi")


async def test_store_isolates_conversations_of_prefix_sharing_tenants(tmp_path):
    opened: Store = await open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        for tenant in ("acme", "acme2"):
            await opened.tenants.upsert(tenant=tenant, timezone="UTC", provider="openai")
        mine = await opened.conversations.id_for(tenant="acme", app="shop", agent="helper", mode="main")
        await opened.conversations.append(tenant="acme", conversation_id=mine, role="user", content="secret")
        assert await conversation(opened, tenant="acme2", app="shop", agent="helper") == []
        assert [m.content for m in await conversation(opened, tenant="acme", app="shop", agent="helper")] == ["secret"]
    finally:
        await opened.close()
