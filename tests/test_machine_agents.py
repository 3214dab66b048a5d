"""Agents and state machines meet, on a real dev server and worker, through the real OpenAI SDK to the
loopback server: a transition calls an agent turn whose reply picks the next place among the declared
targets only; an agent starts a workflow with the built-in `workflows.start` tool (once per call);
the agent's budget charges its calls to the run, and its shadow_mode turns its non-LOW tools into
proposals."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.machines import show_run, start_run
from client.sync import install_manifests
from contract.machine import MachineView
from drills.provider_server import text_reply, tool_reply
from manifest.loader import parse_manifest
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "desk"
MANIFEST = """\
id: desk
agents:
  - id: reviewer
    system_prompt: You review documents.
    tools: [workflows]
    budget: {monthly_usd: 50}
  - id: mailer
    system_prompt: You write mail.
    tools: [email]
    shadow_mode: true
workflows:
  - name: triage
    type: stateMachine
    transitions:
      - name: review
        from: start
        to: [approved, rejected]
        onError: escalated
        call:
          - agent: {id: reviewer, prompt: "Review ${ context.variables.DOC }."}
            as: REVIEW
      - {name: close_approved, from: approved, to: end}
      - {name: close_rejected, from: rejected, to: end}
      - {name: close_escalated, from: escalated, to: end}
  - name: notify
    type: stateMachine
    transitions:
      - name: mail
        from: start
        to: end
        call:
          - agent: {id: mailer, prompt: "Tell ops the review is done."}
  - name: simple
    type: stateMachine
    transitions:
      - {name: only, from: start, to: end}
"""


@pytest.fixture
async def desk(tmp_path, monkeypatch):
    with loopback_provider(monkeypatch, "nothing to add") as provider:
        async with tenant_store(tmp_path, TENANT) as store:
            await store.tenants.upsert(tenant=TENANT, timezone="UTC", provider="openai", model_standard="gpt-5-mini")
            async with dev_server(tmp_path) as (client, _), running_worker(client, store):
                await install_manifests(client, store, [LoadedManifest(Path("d.yaml"), parse_manifest(MANIFEST))],
                                        tenant=TENANT)
                yield client, store, provider


async def finished(client, run_id: str) -> MachineView:
    return await client.get_workflow_handle(run_id, result_type=MachineView).result()


@pytest.mark.parametrize("reply, path", [
    ("Fine.\nnextPlace: rejected", ["rejected", "end"]),
    ("Fine, no choice made.", ["approved", "end"]),
    ("nextPlace: end", ["escalated", "end"]),  # a real place, but not among review's targets
])
async def test_an_agent_step_picks_the_next_place_among_the_declared_targets_only(desk, reply, path):
    client, store, provider = desk
    provider.script_openai(text_reply(reply))
    started = await start_run(client, store, tenant=TENANT, app=APP, workflow="triage", key="t1",
                              variables={"DOC": "q3.pdf"})
    result = await finished(client, started.id)
    assert [step.target for step in result.steps] == path
    asked = provider.requests_to("openai")[-1].body["messages"][-1]["content"]
    assert "Review q3.pdf." in asked and "exactly one of: approved, rejected" in asked
    if path[0] == "escalated":
        assert result.steps[0].outcome == "error"
        assert "nextPlace 'end' is not among review's to: approved, rejected" in result.steps[0].error
    else:
        assert result.variables["REVIEW"]["text"] == reply
    # The agent's budget applies: each LLM call of the step is a ledger row of this run.
    assert len(await store.spend.calls(tenant=TENANT, workflow_id=started.id)) == 1


async def test_an_agent_starts_a_workflow_once_per_tool_call(desk):
    client, store, provider = desk
    provider.script_openai(tool_reply(("call_1", "workflows__start", {"workflow": "simple", "key": "child-1"})),
                           text_reply("Started it.\nnextPlace: approved"))
    started = await start_run(client, store, tenant=TENANT, app=APP, workflow="triage", key="t2",
                              variables={"DOC": "memo"})
    result = await finished(client, started.id)
    assert [step.target for step in result.steps] == ["approved", "end"]
    child = await finished(client, f"machine:{TENANT}:{APP}:simple:child-1")
    assert child.status == "completed"
    tool_result = [m for m in provider.requests_to("openai")[-1].body["messages"] if m["role"] == "tool"][0]
    assert '"started": true' in tool_result["content"]


async def test_a_shadow_agent_step_proposes_instead_of_sending(desk):
    client, store, provider = desk
    provider.script_openai(tool_reply(("call_1", "email__send", {"to": "ops@example.com", "subject": "Done",
                                                                 "body": "The review is done."})),
                           text_reply("Told ops."))
    started = await start_run(client, store, tenant=TENANT, app=APP, workflow="notify", key="n1")
    result = await finished(client, started.id)
    assert result.status == "completed"
    assert await store.outbox.list(tenant=TENANT, app=APP) == []
    proposals = await store.shadow.proposals(tenant=TENANT, workflow_id=started.id)
    assert [p["tool"] for p in proposals] == ["email.send"]
    view = await show_run(client, started.id)
    assert [step.transition for step in view.steps] == ["mail"]
