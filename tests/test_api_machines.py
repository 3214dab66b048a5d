"""The state-machine endpoints on a real dev server with a worker, through the app over httpx's ASGI
transport: start (idempotent by key), show, a manual transition refused then fired, list, graph,
retry and cancel refusals, and tenants that share a prefix seeing nothing of each other's runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.sync import install_manifests
from manifest.loader import parse_manifest
from store import open_store
from tests import machine_skills
from tests.api_env import AUTH, api_env
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "flows"
MANIFEST = """\
id: flows
workflows:
  - name: approval
    type: stateMachine
    transitions:
      - {name: prepare, from: start, to: waiting}
      - name: approve
        from: waiting
        to: approved
        when: manual
        payload_schema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
        call:
          - tool: approval_processor
            arguments: {approval_data: "${ transition.payload }"}
            as: DECISION
      - {name: finish, from: approved, to: end}
"""
RUNS = f"/v1/tenants/{TENANT}/apps/{APP}/workflows"


@pytest.fixture
async def served(tmp_path):
    machine_skills.reset()
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    for tenant in (TENANT, f"{TENANT}2"):
        await store.tenants.upsert(tenant=tenant, timezone="UTC")
    try:
        async with dev_server(tmp_path) as (client, _), running_worker(client, store, skills=machine_skills.registry()):
            for tenant in (TENANT, f"{TENANT}2"):
                await install_manifests(client, store, [LoadedManifest(Path("f.yaml"), parse_manifest(MANIFEST))],
                                        tenant=tenant)
            async with api_env(store, tmp_path, temporal=client) as env:
                yield env
    finally:
        await store.close()


async def waiting(env, path: str) -> dict:
    for _ in range(100):
        shown = (await env.http.get(path, headers=AUTH)).json()
        if shown.get("status") == "waiting":
            return shown
        await asyncio.sleep(0.05)
    raise AssertionError(shown)


async def test_start_show_transition_list_graph(served):
    env = served
    started = await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"key": "r1", "variables": {"n": 1}})
    assert started.status_code == 201, started.text
    assert started.json()["id"] == "machine:acme:flows:approval:r1" and started.json()["created"] is True
    again = await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"key": "r1"})
    assert (again.status_code, again.json()["created"]) == (200, False)
    by_header = await env.http.post(f"{RUNS}/approval/runs", headers={**AUTH, "Idempotency-Key": "Req-42"}, json={})
    repeated = await env.http.post(f"{RUNS}/approval/runs", headers={**AUTH, "Idempotency-Key": "Req-42"}, json={})
    assert (by_header.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["id"] == by_header.json()["id"]

    run = f"{RUNS}/approval/runs/r1"
    shown = await waiting(env, run)
    assert shown["place"] == "waiting" and shown["context"]["variables"] == {"n": 1}
    assert shown["waiting_for"][0]["payload_schema"]["required"] == ["approved"]

    refused = await env.http.post(f"{run}/transitions/approve", headers=AUTH, json={"payload": {"approved": "yes"}})
    assert refused.status_code == 400 and "payload refused" in refused.json()["error"]["message"]
    unknown = await env.http.post(f"{run}/transitions/finish", headers=AUTH, json={"payload": {}})
    assert unknown.status_code == 400 and "no manual transition 'finish'" in unknown.json()["error"]["message"]
    assert (await env.http.get(run, headers=AUTH)).json()["steps_total"] == 1
    assert machine_skills.CALLS == []

    fired = await env.http.post(f"{run}/transitions/approve", headers=AUTH, json={"payload": {"approved": True}})
    assert fired.status_code == 200, fired.text
    assert fired.json()["variables"]["DECISION"] == {"approved": True}
    twice = await env.http.post(f"{run}/transitions/approve", headers=AUTH, json={"payload": {"approved": True}})
    assert twice.status_code == 409
    assert len(machine_skills.CALLS) == 1  # the retried request did not fire it again

    open_run = f"{RUNS}/approval/runs/{by_header.json()['key']}"
    await waiting(env, open_run)
    not_failed = await env.http.post(f"{open_run}/retry", headers=AUTH)
    assert not_failed.status_code == 409 and "only a failed run" in not_failed.json()["error"]["message"]
    ended = await env.http.post(f"{run}/retry", headers=AUTH)
    assert ended.status_code == 409 and "has ended (completed)" in ended.json()["error"]["message"]

    graph = await env.http.get(f"{RUNS}/approval/graph", headers=AUTH, params={"current": "waiting"})
    assert graph.status_code == 200 and "waiting --> approved: approve (manual)" in graph.text

    listed = []
    for _ in range(50):
        listed = (await env.http.get(RUNS, headers=AUTH)).json()
        if len(listed) == 2:
            break
    assert {r["key"] for r in listed} == {"r1", by_header.json()["key"]}

    cancelled = await env.http.delete(f"{RUNS}/approval/runs/{by_header.json()['key']}", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True


async def test_tenants_sharing_a_prefix_see_none_of_each_others_runs(served):
    env = served
    assert (await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"key": "mine"})).status_code == 201
    other = f"/v1/tenants/{TENANT}2/apps/{APP}/workflows"
    assert (await env.http.get(f"{other}/approval/runs/mine", headers=AUTH)).status_code == 404
    assert (await env.http.get(other, headers=AUTH)).json() == []
    moved = await env.http.post(f"{other}/approval/runs/mine/transitions/approve", headers=AUTH,
                                json={"payload": {"approved": True}})
    assert moved.status_code == 404
    assert (await env.http.delete(f"{other}/approval/runs/mine", headers=AUTH)).json()["cancelled"] is False


async def test_every_endpoint_needs_the_token(served):
    env = served
    for method, path in (("post", f"{RUNS}/approval/runs"), ("get", RUNS), ("get", f"{RUNS}/approval/runs/r1"),
                         ("post", f"{RUNS}/approval/runs/r1/transitions/approve"),
                         ("post", f"{RUNS}/approval/runs/r1/retry"), ("delete", f"{RUNS}/approval/runs/r1"),
                         ("get", f"{RUNS}/approval/graph")):
        answer = await getattr(env.http, method)(path)
        assert answer.status_code == 401, (method, path)


async def test_unknown_workflow_and_bad_ids(served):
    env = served
    missing = await env.http.post(f"{RUNS}/nope/runs", headers=AUTH, json={})
    assert missing.status_code == 404 and "has no workflow 'nope'" in missing.json()["error"]["message"]
    bad = await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"key": "Bad Key"})
    assert bad.status_code == 400
    extra = await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"keys": "x"})
    assert extra.status_code == 400


async def test_uninstall_cancels_the_apps_running_runs(served):
    from client.sync import uninstall_app

    env = served
    assert (await env.http.post(f"{RUNS}/approval/runs", headers=AUTH, json={"key": "doomed"})).status_code == 201
    await waiting(env, f"{RUNS}/approval/runs/doomed")
    client = await env.context.backends.temporal()
    for _ in range(50):  # visibility is eventually consistent
        if [run async for run in client.list_workflows(
                f'WorkflowId="machine:{TENANT}:{APP}:approval:doomed" AND MachineStatus="waiting"')]:
            break
    result = await uninstall_app(client, env.store, tenant=TENANT, app=APP)
    assert "machine:acme:flows:approval:doomed" in result.cancelled
    for _ in range(100):  # the run processes its cancellation
        shown = (await env.http.get(f"{RUNS}/approval/runs/doomed", headers=AUTH)).json()
        if shown["status"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert shown["status"] == "cancelled"
    # The other tenant's run of the same app and key is untouched.
    other = f"/v1/tenants/{TENANT}2/apps/{APP}/workflows/approval/runs"
    assert (await env.http.post(other, headers=AUTH, json={"key": "doomed"})).status_code == 201
