"""The chat, conversation and inbound endpoints on a real dev server and worker, with agent turns
through the real OpenAI SDK to the loopback provider, called through the app over httpx's ASGI
transport."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.sync import install_manifests
from drills.provider_server import text_reply
from manifest.loader import parse_manifest
from tests.agent_env import loopback_provider, tenant_store
from tests.api_env import AUTH, api_env
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "shop"
MANIFEST = """\
id: shop
agents:
  - id: helper
    on_chat: {model_tier: cheap}
    on_inbound: {prompt: Triage this message.}
  - id: clerk
    on_chat: {}
  - id: mute
"""
AGENT = f"/v1/tenants/{TENANT}/apps/{APP}/agents"


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "Noted.") as server:
        yield server


@pytest.fixture
async def running(tmp_path, provider):
    async with (tenant_store(tmp_path, TENANT, f"{TENANT}2") as store, dev_server(tmp_path) as (client, _),
                running_worker(client, store)):
        await install_manifests(client, store, [LoadedManifest(Path("s.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)
        yield client, store


async def test_chat_conversation_inbound(running, provider, tmp_path):
    client, store = running
    async with api_env(store, tmp_path, temporal=client, chat_wait_seconds=1.5) as env:
        provider.script_openai(text_reply("Hello from the helper."))
        answered = await env.http.post(f"{AGENT}/helper/chat", headers=AUTH, json={"text": "Hi there"})
        assert answered.status_code == 200, answered.text
        assert answered.json()["reply"] == "Hello from the helper."

        # The Idempotency-Key is the message id: a retry is answered once, with the same reply.
        keyed = {**AUTH, "Idempotency-Key": "chat-7"}
        provider.script_openai(text_reply("Seven."))
        first = await env.http.post(f"{AGENT}/helper/chat", headers=keyed, json={"text": "Count"})
        calls = len(provider.requests_to("openai"))
        again = await env.http.post(f"{AGENT}/helper/chat", headers=keyed, json={"text": "Count"})
        assert first.json() == again.json() and first.json()["message_id"] == "chat-7"
        assert len(provider.requests_to("openai")) == calls

        # A slow model: 504 with the JSON error shape; the reply lands in the conversation anyway.
        provider.script_openai(text_reply("Late but here.", delay=3))
        slow = await env.http.post(f"{AGENT}/helper/chat", headers=AUTH, json={"text": "Slow one?"})
        assert slow.status_code == 504 and slow.json()["error"]["code"] == "timed_out"
        assert "still answering" in slow.json()["error"]["message"]
        for _ in range(300):  # a guard against waiting forever, not a speed requirement
            thread = (await env.http.get(f"{AGENT}/helper/conversation", headers=AUTH)).json()
            if thread and thread[-1]["content"] == "Late but here.":
                break
            await asyncio.sleep(0.1)
        assert [m["role"] for m in thread] == ["user", "assistant"] * 3
        assert thread[0]["content"] == "Hi there"

        # Another tenant whose id shares the prefix sees nothing of it.
        other = await env.http.get(f"/v1/tenants/{TENANT}2/apps/{APP}/agents/helper/conversation", headers=AUTH)
        assert (other.status_code, other.json()) == (200, [])

        message = {"id": "<m1@mail>", "from": "ada@example.com", "subject": "Refund", "text": "Refund order 9."}
        accepted = await env.http.post(f"{AGENT}/helper/inbound", headers=AUTH, json=message)
        assert accepted.status_code == 202 and accepted.json()["duplicate"] is False
        duplicate = await env.http.post(f"{AGENT}/helper/inbound", headers=AUTH, json=message)
        assert duplicate.status_code == 200 and duplicate.json() == {**accepted.json(), "duplicate": True}


async def test_refusals_and_per_agent_rate_limit(running, tmp_path):
    client, store = running
    async with api_env(store, tmp_path, temporal=client, handler_rate_burst=2, handler_rate_per_second=0.01) as env:
        cases = [
            ("helper/chat", {"text": ""}, 400, "text"),
            ("helper/chat", {"text": "x" * 8_001}, 400, "text"),
            ("helper/chat", {"text": "hi", "extra": 1}, 400, "extra"),
            ("helper/inbound", {"id": "m", "text": "no sender"}, 400, "from"),
            ("mute/chat", {"text": "hi"}, 409, None),
            ("mute/inbound", {"id": "m", "from": "a", "text": "hi"}, 409, None),
            ("clerk/inbound", {"id": "m", "from": "a", "text": "hi"}, 409, None),
            ("nobody/chat", {"text": "hi"}, 404, None),
            ("Bad Agent/chat", {"text": "hi"}, 400, "agent"),
        ]
        for path, body, status, field in cases:
            response = await env.http.post(f"{AGENT}/{path}", headers=AUTH, json=body)
            assert response.status_code == status, (path, body, response.text)
            if field:
                assert field in response.text, response.text
        unauthenticated = await env.http.post(f"{AGENT}/helper/chat", json={"text": "hi"})
        assert unauthenticated.status_code == 401
        assert (await env.http.get(f"{AGENT}/helper/conversation")).status_code == 401

        # Two messages for the helper, then 429 with Retry-After; the clerk keeps its own allowance.
        for index in range(2):
            sent = await env.http.post(f"{AGENT}/helper/inbound", headers=AUTH,
                                       json={"id": f"r{index}", "from": "a@b.c", "text": "hi"})
            assert sent.status_code == 202, sent.text
        limited = await env.http.post(f"{AGENT}/helper/inbound", headers=AUTH,
                                      json={"id": "r2", "from": "a@b.c", "text": "hi"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "helper" in limited.json()["error"]["message"]
        assert (await env.http.post(f"{AGENT}/clerk/chat", headers=AUTH, json={"text": "hi"})).status_code == 200
