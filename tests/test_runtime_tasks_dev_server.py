"""Runtime tasks and delegation to a task on a real dev server, with a real worker whose agent turns
go through the real OpenAI SDK to a loopback server speaking its wire format.

- `heartbeats tasks create` (the CLI) schedules a one-shot that runs once; a second create with the
  same key changes nothing;
- the model's own `tasks__create` call schedules a task that runs;
- a recurring task is listed with its next run, and cancelled;
- `team__delegate` with `task` runs the target agent's task with trigger `a2a`;
- uninstalling the app leaves no runtime task running.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from temporalio.client import WorkflowExecutionStatus

from client.checks import LoadedManifest
from client.jobs import cancel_task, create_task, list_tasks
from client.operations import heartbeat_runs, list_heartbeats
from client.sync import install_manifests, uninstall_apps
from contract.errors import NotFound
from contract.names import heartbeat_workflow_id, job_workflow_id, task_workflow_id
from drills.provider_server import text_reply, tool_reply
from manifest.loader import parse_manifest
from store import Store
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT, APP = "acme", "sales"
MANIFEST = """\
id: sales
agents:
  - id: lead
    system_prompt: You lead the sales team.
    tools: [tasks, team]
    team: [reviewer]
    heartbeats:
      - slug: plan
        skill: _internal_app_records
        tool: query
        params: {record_type: lead}
        schedule_type: weekly
        time_of_day: "03:00"
        day_of_week: 3
        invoke_always: true
        prompt: Plan the day.
  - id: reviewer
    system_prompt: You review cases.
    tools: [records]
    tasks:
      - slug: review_cases
        prompt: Review each case handed to you.
        dedupe: {key: case_id}
        triggers:
          - {type: a2a, from: [lead]}
"""
PLAN = heartbeat_workflow_id(TENANT, APP, "lead", "plan")
REVIEW = task_workflow_id(TENANT, APP, "reviewer", "review_cases")


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "Done.") as server:
        yield server


@pytest.fixture
async def store(tmp_path):
    async with tenant_store(tmp_path, TENANT, timezone="Europe/Berlin") as opened:
        yield opened


async def receipts(store: Store, workflow_id: str, count: int, timeout: float = 60) -> list[dict]:
    found: list[dict] = []
    for _ in range(int(timeout * 10)):  # a guard against waiting forever, not a speed requirement
        try:
            found = [r.to_json() for r in reversed(await heartbeat_runs(store, workflow_id, limit=100))]
        except NotFound:  # not created yet
            found = []
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} receipts for {workflow_id}: {found}")


async def final_status(client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The workflow's status once it has closed (a cancel is processed by the workflow)."""
    for _ in range(300):
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        if status != WorkflowExecutionStatus.RUNNING:
            return status
        await asyncio.sleep(0.1)
    return WorkflowExecutionStatus.RUNNING


def soon(seconds: int = 3) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


async def cli(monkeypatch, address: str, url: str, *args: str) -> dict[str, Any]:
    from cli.main import cli as heartbeats

    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    result = await asyncio.to_thread(CliRunner().invoke, heartbeats, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_runtime_tasks_end_to_end(tmp_path, store, provider, monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    async with dev_server(tmp_path) as (client, address), running_worker(client, store):
        await install_manifests(client, store, [LoadedManifest(Path("sales.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)

        # The CLI: a one-shot in a few seconds; the same key again changes nothing.
        args = ("tasks", "create", "--tenant", TENANT, "--app", APP, "--agent", "lead", "--key", "ping-ada",
                "--at", soon(), "--prompt", "Ping Ada.", "--params", '{"lead": "ada"}')
        first = await cli(monkeypatch, address, url, *args)
        again = await cli(monkeypatch, address, url, *args[:-4], "--prompt", "Something else.")
        one_shot = job_workflow_id(TENANT, APP, "lead", "ping-ada")
        assert (first["created"], first["id"], first["status"]) == (True, one_shot, "active")
        assert (again["created"], again["prompt"]) == (False, "Ping Ada.")
        [ran] = await receipts(store, one_shot, 1)
        assert (ran["trigger"], ran["outcome"]) == ("job", "substantive")
        assert "Ping Ada." in json.dumps(provider.requests_to("openai")[-1].body["messages"])
        await asyncio.sleep(1)
        assert len(await heartbeat_runs(store, one_shot, limit=10)) == 1  # once
        assert await final_status(client, one_shot) == WorkflowExecutionStatus.COMPLETED
        assert [t.task.status for t in await list_tasks(store, tenant=TENANT, agent="lead")] == ["done"]

        # The model's own tasks__create call: the heartbeat's turn schedules a follow-up that runs.
        provider.script_openai(
            tool_reply(("call_1", "tasks__create", {"key": "follow-up", "prompt": "Follow up on the plan.",
                                                   "at": soon(4)})),
            text_reply("Scheduled the follow-up."))
        await client.get_workflow_handle(PLAN).signal("run_now")
        follow_up = job_workflow_id(TENANT, APP, "lead", "follow-up")
        [ran] = await receipts(store, follow_up, 1)
        assert ran["trigger"] == "job"
        made = [t for t in await list_tasks(store, tenant=TENANT, agent="lead") if t.task.key == "follow-up"]
        assert made[0].task.created_by == PLAN and made[0].task.created_in.startswith(f"{PLAN}/")

        # A recurring task: listed with its next run, in `heartbeats list` too, then cancelled.
        daily = await create_task(client, store, tenant=TENANT, app=APP, agent="lead", key="daily-digest",
                                  prompt="Digest.", cron="0 9 * * *")
        assert daily.created and daily.next_run is not None
        next_local = datetime.fromisoformat(daily.next_run.replace("Z", "+00:00")).astimezone(
            __import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert (next_local.hour, next_local.minute) == (9, 0)
        listed = await list_heartbeats(client, tenant=TENANT)
        assert daily.task.workflow_id in {view.id for view in listed.views}
        cancelled = await cancel_task(client, store, tenant=TENANT, app=APP, agent="lead", key="daily-digest")
        assert (cancelled.task.status, cancelled.next_run) == ("cancelled", None)
        assert await final_status(client, daily.task.workflow_id) == WorkflowExecutionStatus.CANCELED

        # Delegation to a task: the lead hands a case to the reviewer's task; it runs with trigger a2a.
        provider.script_openai(
            tool_reply(("call_2", "team__delegate", {"agent": "reviewer", "task": "review_cases",
                                                    "input": {"case_id": "c-42"}})),
            text_reply("Handed c-42 to the reviewer."))
        await client.get_workflow_handle(PLAN).signal("run_now")
        [reviewed] = await receipts(store, REVIEW, 1)
        assert (reviewed["trigger"], reviewed["outcome"], reviewed["cases"]) == ("a2a", "substantive", 1)
        delegated = [json.loads(m["content"]) for request in provider.requests_to("openai")
                     for m in request.body["messages"] if m["role"] == "tool" and "delegated" in m["content"]]
        assert delegated and delegated[0] == {"delegated": True, "task": REVIEW, "case": "c-42"}

        # Uninstall: no runtime task keeps running.
        left = await create_task(client, store, tenant=TENANT, app=APP, agent="lead", key="weekly",
                                 prompt="Weekly.", every="1w")
        await uninstall_apps(client, store, tenant=TENANT, apps=[APP])
        assert await final_status(client, left.task.workflow_id) == WorkflowExecutionStatus.CANCELED
        assert [t.task.status for t in await list_tasks(store, tenant=TENANT, status="active")] == []


async def test_refusals_create_nothing(tmp_path, store, provider):
    async with dev_server(tmp_path) as (client, _):
        await install_manifests(client, store, [LoadedManifest(Path("sales.yaml"), parse_manifest(MANIFEST))],
                                tenant=TENANT)
        from contract.errors import InvalidInput, NotFound

        cases = [
            (NotFound, dict(agent="nobody", key="k", every="1d")),
            (InvalidInput, dict(agent="lead", key="Bad Key", every="1d")),
            (InvalidInput, dict(agent="lead", key="k", every="1d", in_="2h")),
            (InvalidInput, dict(agent="lead", key="k", at="2020-01-01T00:00:00Z")),
            (InvalidInput, dict(agent="lead", key="k", every="1m")),
        ]
        for error, arguments in cases:
            with pytest.raises(error):
                await create_task(client, store, tenant=TENANT, app=APP, prompt="p", **arguments)
        assert await list_tasks(store, tenant=TENANT) == []
        running = [e async for e in client.list_workflows('WorkflowType="JobWorkflow"')]
        assert running == []
