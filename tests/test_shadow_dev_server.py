"""Shadow mode on a real dev server and worker, through the real OpenAI SDK to the loopback server.

- A task in shadow: the model's email.send is recorded as the case's proposal, never executed (no
  outbox row), the model is told so, and the receipt says `shadow`; kv.get (LOW) runs as usual.
- A decision recorded before the case's run is what the model gets back instead.
- The report compares per case on the fields `shadow.compare` names; promotion is refused with
  the reason until `compared >= min_cases` and the disagreement rate is below 5%, then audited;
  the promoted task's next run executes its tools (this tenant only).
- An agent-level shadow heartbeat against a model that always calls email.send: zero outbox rows,
  every call recorded as a proposal.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.operations import heartbeat_runs, run_task_now
from client.shadow import decide, promote, shadow_report
from client.sync import install_manifests
from contract.errors import Conflict, InvalidInput, NotFound
from contract.names import heartbeat_workflow_id, task_workflow_id
from contract.task import ManualRun
from drills.provider_server import text_reply, tool_reply
from manifest.loader import parse_manifest
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT = "acme"
MANIFEST = """\
id: support
agents:
  - id: reviewer
    system_prompt: You answer customers.
    tools: [email, kv]
    tasks:
      - slug: answer
        prompt: Answer the customer of each case.
        dedupe: {key: case_id}
        shadow_mode: true
        shadow: {compare: {email.send: [to]}, min_cases: 2}
        triggers: [{type: manual}]
  - id: eager
    system_prompt: You always send email.
    tools: [email]
    shadow_mode: true
    heartbeats:
      - slug: blast
        skill: _internal_app_records
        tool: query
        params: {record_type: lead}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 3
        invoke_always: true
        prompt: Email everyone.
"""
ANSWER = task_workflow_id(TENANT, "support", "reviewer", "answer")
BLAST = heartbeat_workflow_id(TENANT, "support", "eager", "blast")


def email(to: str, call: str) -> tuple:
    return (call, "email__send", {"to": to, "subject": "Your case", "body": "Hello"})


async def receipts(store, workflow_id: str, count: int) -> list:
    for _ in range(600):  # a guard against waiting forever, not a speed requirement
        try:
            found = await heartbeat_runs(store, workflow_id, limit=100)
        except NotFound:
            found = []
        if len(found) >= count:
            return list(reversed(found))
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} receipts for {workflow_id}")


async def run_case(client, store, case: str, count: int):
    await run_task_now(client, ANSWER, ManualRun(payload={"case_id": case}))
    return (await receipts(store, ANSWER, count))[-1]


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "Done.") as server:
        yield server


async def test_shadow_task_records_compares_and_promotes(tmp_path, provider):
    async with tenant_store(tmp_path, TENANT, f"{TENANT}2") as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await install_manifests(client, store, [LoadedManifest(Path("s.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)
        # c1: the email is proposed, not sent; kv.get (LOW) runs; the receipt says shadow.
        provider.script_openai(tool_reply(email("ada@example.com", "e1"), ("k1", "kv__get", {"key": "x"})),
                               text_reply("Answered Ada."))
        first = await run_case(client, store, "c1", 1)
        assert (first.outcome, first.reason) == ("substantive", "shadow")
        assert await store.outbox.list(tenant=TENANT, app="support") == []
        told = [m["content"] for m in provider.requests_to("openai")[-1].body["messages"] if m["role"] == "tool"]
        assert json.loads(told[0])["executed"] is False and "shadow" not in told[1]  # kv.get ran: its value, null

        # c2 decided before its run ("no action"): the model gets that decision back.
        await decide(store, workflow_id=ANSWER, case="c2", actions=[], actor="test")
        provider.script_openai(tool_reply(email("bob@example.com", "e2")), text_reply("Answered Bob."))
        await run_case(client, store, "c2", 2)
        told = [m["content"] for m in provider.requests_to("openai")[-1].body["messages"] if m["role"] == "tool"]
        assert json.loads(told[0])["human_decision"] == []

        await decide(store, workflow_id=ANSWER, case="c1", actor="test",
                     actions=[{"tool": "email.send", "arguments": {"to": "ada@example.com", "subject": "Other"}}])
        report = await shadow_report(store, workflow_id=ANSWER)
        assert (report.cases, report.compared, report.agree, report.disagree) == (2, 2, 1, 1)
        [due] = [item for item in await store.queue.list(tenant=TENANT) if item.kind == "shadow_review"]
        assert due.subject == ANSWER  # one review item for the task, however many shadow runs
        assert report.disagreeing[0]["case"] == "c2"
        with pytest.raises(Conflict, match="disagreement rate 50.0% is not below 5%"):
            await promote(store, workflow_id=ANSWER, actor="test")
        await decide(store, workflow_id=ANSWER, case="c2", actor="test",
                     actions=[{"tool": "email.send", "arguments": {"to": "bob@example.com"}}])
        promoted = await promote(store, workflow_id=ANSWER, actor="operator:test")
        assert (promoted.promoted, promoted.shadow, promoted.agree) == (True, False, 2)
        [audited] = await store.audit.list(tenant=TENANT, action="shadow_promote")
        assert (audited.actor, audited.target) == ("operator:test", ANSWER)

        # Promoted: the next run executes the tool, and the receipt no longer says shadow.
        provider.script_openai(tool_reply(email("cy@example.com", "e3")), text_reply("Answered Cy."))
        live = await run_case(client, store, "c3", 3)
        assert live.reason is None and len(await store.outbox.list(tenant=TENANT, app="support")) == 1

        # Refusals: a malformed decision, another tenant's ID, a second promotion.
        with pytest.raises(InvalidInput, match="decision"):
            await decide(store, workflow_id=ANSWER, case="c9", actions=[{"tool": "not a tool"}], actor="test")
        with pytest.raises(NotFound):
            await shadow_report(store, workflow_id=task_workflow_id(f"{TENANT}2", "support", "reviewer", "answer"))
        with pytest.raises(Conflict, match="promoted already"):
            await promote(store, workflow_id=ANSWER, actor="test")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_an_agent_in_shadow_never_sends_however_often_asked(tmp_path, provider, api):
    async with tenant_store(tmp_path, TENANT) as store, dev_server(tmp_path) as (client, _), \
            running_worker(client, store):
        await store.tenants.upsert(tenant=TENANT, provider=api)
        await install_manifests(client, store, [LoadedManifest(Path("s.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)
        provider.fallback = lambda _r: tool_reply(email("all@example.com", f"e{len(provider.requests)}"))
        await client.get_workflow_handle(BLAST).signal("run_now")
        [receipt] = await receipts(store, BLAST, 1)
        assert receipt.outcome == "failed" and receipt.reason == "max_steps"  # it never stops asking
        calls = len(provider.requests_to(api))
        proposals = await store.shadow.proposals(tenant=TENANT, workflow_id=BLAST)
        assert len(proposals) == calls  # every call asked for an email: every one recorded
        assert {(p["case"], p["tool"]) for p in proposals} == {(f"tick:{receipt.tick_id}", "email.send")}
        assert await store.outbox.list(tenant=TENANT, app="support") == []
        assert await store.shadow.cases(tenant=TENANT, workflow_id=BLAST) == []  # a failed run is no case
