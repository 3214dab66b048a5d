"""The runtime-task endpoints on a real dev server (no worker needed: creating, listing and
cancelling are Temporal starts and cancels), through the app over httpx's ASGI transport."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from client.checks import LoadedManifest
from client.sync import install_manifests
from manifest.loader import parse_manifest
from store import open_store
from tests.api_env import AUTH, api_env
from tests.temporal_env import dev_server

TENANT, APP = "acme", "sales"
MANIFEST = """\
id: sales
agents:
  - id: lead
    tools: [tasks]
"""
TASKS = f"/v1/tenants/{TENANT}/apps/{APP}/agents/lead/tasks"


@pytest.fixture
async def installed(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    await store.tenants.upsert(tenant=TENANT, timezone="Europe/Berlin")
    await store.tenants.upsert(tenant=f"{TENANT}2", timezone="UTC")
    try:
        async with dev_server(tmp_path) as (client, _):
            await install_manifests(client, store, [LoadedManifest(Path("s.yaml"), parse_manifest(MANIFEST))],
                                    tenant=TENANT)
            yield client, store
    finally:
        await store.close()


async def test_create_list_cancel(installed, tmp_path):
    client, store = installed
    async with api_env(store, tmp_path, temporal=client) as env:
        body = {"key": "weekly-digest", "prompt": "Send the digest.", "cron": "0 9 * * 1", "params": {"top": 5}}
        created = await env.http.post(TASKS, headers=AUTH, json=body)
        assert created.status_code == 201, created.text
        task = created.json()
        assert (task["created"], task["id"], task["status"], task["timing"]) == (
            True, "job:acme:sales:lead:weekly-digest", "active", "cron 0 9 * * 1")
        assert task["next_run"] is not None
        again = await env.http.post(TASKS, headers=AUTH, json={**body, "prompt": "Something else."})
        assert (again.status_code, again.json()["created"], again.json()["prompt"]) == (200, False, "Send the digest.")

        listed = await env.http.get(TASKS, headers=AUTH)
        assert [t["key"] for t in listed.json()] == ["weekly-digest"]
        # Another tenant whose id shares the prefix sees none of them.
        other = await env.http.get(f"/v1/tenants/{TENANT}2/apps/{APP}/agents/lead/tasks", headers=AUTH)
        assert other.status_code == 200 and other.json() == []

        cancelled = await env.http.delete(f"{TASKS}/weekly-digest", headers=AUTH)
        assert (cancelled.status_code, cancelled.json()["status"], cancelled.json()["next_run"]) == (200, "cancelled", None)
        described = await client.get_workflow_handle(task["id"]).describe()
        assert described.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CANCELED)  # no worker here
        assert [t["status"] for t in (await env.http.get(f"{TASKS}?status=cancelled", headers=AUTH)).json()] == [
            "cancelled"]


async def test_refusals(installed, tmp_path):
    client, store = installed
    async with api_env(store, tmp_path, temporal=client) as env:
        cases = [
            (TASKS, {"key": "k", "prompt": "p"}, 400, None),  # no timing
            (TASKS, {"key": "k", "prompt": "p", "in": "2h", "every": "1d"}, 400, None),
            (TASKS, {"key": "Not A Key", "prompt": "p", "in": "2h"}, 400, None),
            (TASKS, {"key": "k", "prompt": "p", "in": "2h", "extra": 1}, 400, "extra"),
            (TASKS, {"key": "k", "in": "2h"}, 400, "prompt"),
            (TASKS, {"key": "k", "prompt": "p", "at": "2020-01-01T00:00:00Z"}, 400, None),
            (f"/v1/tenants/{TENANT}/apps/{APP}/agents/nobody/tasks", {"key": "k", "prompt": "p", "in": "2h"}, 404, None),
            (f"/v1/tenants/{TENANT}/apps/nope/agents/lead/tasks", {"key": "k", "prompt": "p", "in": "2h"}, 404, None),
        ]
        for path, body, status, field in cases:
            response = await env.http.post(path, headers=AUTH, json=body)
            assert response.status_code == status, (body, response.text)
            if field:
                assert response.json()["error"]["field"] == field, response.text
        assert (await env.http.post(TASKS, json={"key": "k", "prompt": "p", "in": "2h"})).status_code == 401
        assert (await env.http.delete(f"{TASKS}/never", headers=AUTH)).status_code == 404
        assert (await env.http.get(TASKS, headers=AUTH)).json() == []
