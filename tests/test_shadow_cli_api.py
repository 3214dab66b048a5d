"""`heartbeats shadow decide|report|promote` and the /v1/tenants/{t}/workflows/{id}/shadow endpoints
over a real SQLite store (shadow runs and proposals seeded through the store's own shadow area, as the
tool-call and tick-completion activities write them): outputs, refusals with one clear line or a JSON
error naming the field, tenant isolation with prefix-sharing ids, the promotion's bar and its audit."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from client.install import installed_hash, manifest_json
from contract.names import task_workflow_id
from manifest.loader import parse_manifest
from store import open_store
from tests.api_env import AUTH, api_env

MANIFEST = """\
id: support
agents:
  - id: reviewer
    tools: [email]
    tasks:
      - slug: answer
        shadow_mode: true
        shadow: {compare: {email.send: [to]}, min_cases: 2}
        triggers: [{type: manual}]
"""
ANSWER = task_workflow_id("acme", "support", "reviewer", "answer")
OTHER = task_workflow_id("acme2", "support", "reviewer", "answer")


async def seed(url: str) -> None:
    store = await open_store(url)
    try:
        parsed = parse_manifest(MANIFEST)
        for tenant in ("acme", "acme2"):
            await store.tenants.upsert(tenant=tenant, timezone="UTC")
            await store.apps.record(tenant=tenant, app="support", name="support", version="1",
                                    manifest=manifest_json(parsed), manifest_hash=installed_hash(manifest_json(parsed), "UTC"))
        for case, to in (("c1", "ada@example.com"), ("c2", "bob@example.com")):
            await store.shadow.propose(tenant="acme", workflow_id=ANSWER, case_key=case, tick_id=f"r/{case}",
                                       call_key=f"{ANSWER}/r/{case}/0/0", tool="email.send",
                                       arguments={"to": to, "subject": "Hi"})
            await store.shadow.record_run(tenant="acme", workflow_id=ANSWER, case_key=case, tick_id=f"r/{case}")
    finally:
        await store.close()


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def cli_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    asyncio.run(seed(url))
    return url


def test_shadow_cli(cli_url):
    report = json.loads(run("shadow", "report", ANSWER, "--json"))
    assert (report["shadow"], report["cases"], report["compared"], report["min_cases"]) == (True, 2, 0, 2)
    assert "not enough compared cases: 0 of the 2" in run("shadow", "promote", ANSWER, code=1)
    run("shadow", "decide", ANSWER, "--case", "c1", "--decision",
        '[{"tool": "email.send", "arguments": {"to": "ada@example.com", "subject": "Other words"}}]')
    run("shadow", "decide", ANSWER, "--case", "c2", "--decision", "[]")
    report = json.loads(run("shadow", "report", ANSWER, "--json"))
    assert (report["agree"], report["disagree"], report["disagreement_rate"]) == (1, 1, 0.5)
    assert [case["case"] for case in report["disagreeing"]] == ["c2"]
    assert "disagreement rate 50.0%" in run("shadow", "promote", ANSWER, code=1)
    for args, message in [
        (("shadow", "decide", ANSWER, "--case", "c3", "--decision", "{not json"), "not valid JSON"),
        (("shadow", "decide", ANSWER, "--case", "c3", "--decision", '[{"tool": "send"}]'), "decision[0.tool]"),
        (("shadow", "decide", ANSWER, "--case", "c3", "--decision", '{"tool": "email.send"}'), "decision"),
        (("shadow", "report", "task:acme:support:reviewer:nope"), "no installed heartbeat or task"),
        (("shadow", "report", "not-an-id"), "not a heartbeat or task workflow ID"),
    ]:
        output = run(*args, code=1)
        assert output.startswith("error: ") and message in output and "Traceback" not in output, output
    run("shadow", "decide", ANSWER, "--case", "c2", "--decision",
        '[{"tool": "email.send", "arguments": {"to": "bob@example.com"}}]')
    assert "promoted" in run("shadow", "promote", ANSWER)
    assert json.loads(run("shadow", "report", ANSWER, "--json"))["shadow"] is False
    actions = [e["action"] for e in json.loads(run("audit", "--tenant", "acme", "--json"))]
    assert actions[0] == "shadow_promote" and actions.count("shadow_decide") == 3
    # The prefix-sharing tenant's task is untouched: still in shadow, nothing decided.
    other = json.loads(run("shadow", "report", OTHER, "--json"))
    assert (other["shadow"], other["cases"], other["compared"]) == (True, 0, 0)


async def test_shadow_endpoints(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    await seed(url)
    store = await open_store(url)
    try:
        async with api_env(store, tmp_path) as env:
            base = f"/v1/tenants/acme/workflows/{ANSWER}/shadow"
            assert (await env.http.get(f"{base}/report")).status_code == 401
            crossed = await env.http.get(f"/v1/tenants/acme2/workflows/{ANSWER}/shadow/report", headers=AUTH)
            assert crossed.status_code == 404
            bad = await env.http.post(f"{base}/decisions", headers=AUTH, json={"case": "c1"})
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "decision"
            refused = await env.http.post(f"{base}/promote", headers=AUTH)
            assert refused.status_code == 409 and "not enough compared cases" in refused.json()["error"]["message"]
            for case, to in (("c1", "ada@example.com"), ("c2", "bob@example.com")):
                done = await env.http.post(f"{base}/decisions", headers=AUTH, json={
                    "case": case, "decision": [{"tool": "email.send", "arguments": {"to": to}}]})
                assert done.status_code == 204
            report = (await env.http.get(f"{base}/report", headers=AUTH)).json()
            assert (report["compared"], report["agree"]) == (2, 2)
            promoted = await env.http.post(f"{base}/promote", headers=AUTH)
            assert promoted.status_code == 200 and promoted.json()["promoted"] is True
            assert (await env.http.post(f"{base}/promote", headers=AUTH)).status_code == 409
    finally:
        await store.close()
