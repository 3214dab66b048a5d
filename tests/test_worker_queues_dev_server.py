"""Workflow workers and LLM workers as separate processes, on a real dev server, from the CLI.

`heartbeats worker --role workflows` polls the `heartbeats` task queue, `--role llm` polls
`heartbeats-llm`, where workflows schedule the model calls. With only the workflows worker up, a
run-now tick's agent step waits on the LLM queue (scheduled there, never started, no receipt); the
llm worker's start completes it. With both up, the next run-now completes at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState

from contract.names import AGENT_STEP, LLM_TASK_QUEUE, TASK_QUEUE
from tests.temporal_env import dev_server

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEARTBEATS = str(BIN / "heartbeats")
TEMPORAL = str(BIN / "temporal")
HEARTBEAT_ID = "heartbeat:acme:ops:watch:tick"
MANIFEST = """\
id: ops
agents:
  - id: watch
    system_prompt: You watch the numbers.
    heartbeats:
      - slug: tick
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 60
        invoke_always: true
"""


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def start_worker(env: dict[str, str], role: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([HEARTBEATS, "worker", "--role", role], env=env, cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def receipts(env: dict[str, str]) -> list[dict]:
    return json.loads(run(env, HEARTBEATS, "runs", HEARTBEAT_ID, "--json"))


async def wait_for(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def poller_pids(env: dict[str, str], queue: str, kind: str) -> set[int]:
    """The processes polling `queue` for `kind` tasks, from `temporal task-queue describe` (worker
    identities are `pid@host`)."""
    described = json.loads(run(env, TEMPORAL, "task-queue", "describe", "--task-queue", queue,
                               "--task-queue-type", kind, "-o", "json"))
    pollers = described.get("pollers") or []
    return {int(poller["identity"].split("@")[0]) for poller in pollers}


async def test_workflow_and_llm_workers_run_apart(tmp_path: Path):
    manifest = tmp_path / "ops.yaml"
    manifest.write_text(MANIFEST)
    async with dev_server(tmp_path) as (client, address):
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "HEARTBEATS_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
        run(env, HEARTBEATS, "tenant", "set", "acme", "--provider", "offline")
        run(env, HEARTBEATS, "install", str(manifest), "--tenant", "acme")
        workflows = start_worker(env, "workflows", tmp_path / "workflows.log")
        llm: subprocess.Popen[bytes] | None = None
        try:
            await wait_for(lambda: workflows.pid in poller_pids(env, TASK_QUEUE, "workflow"), "the workflows worker")
            run(env, HEARTBEATS, "run-now", HEARTBEAT_ID)
            handle = client.get_workflow_handle(HEARTBEAT_ID)

            async def pending_step():
                pending = (await handle.describe()).raw_description.pending_activities
                return [activity for activity in pending if activity.activity_type.name == AGENT_STEP]

            await wait_for_async(pending_step, "the agent step to be scheduled")
            # It was scheduled on the LLM queue, which nobody polls: it stays scheduled, not started.
            scheduled = [event.activity_task_scheduled_event_attributes
                         async for event in handle.fetch_history_events()
                         if event.HasField("activity_task_scheduled_event_attributes")]
            assert [(s.activity_type.name, s.task_queue.name) for s in scheduled] == [(AGENT_STEP, LLM_TASK_QUEUE)]
            await asyncio.sleep(3)
            still = await pending_step()
            assert len(still) == 1 and still[0].attempt == 1
            assert still[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            assert receipts(env) == []
            assert poller_pids(env, LLM_TASK_QUEUE, "activity") == set()
            assert workflows.pid in poller_pids(env, TASK_QUEUE, "activity")  # tools, machine calls: its own

            llm = start_worker(env, "llm", tmp_path / "llm.log")
            first = await wait_for(lambda: receipts(env), "the receipt once the llm worker runs")
            assert first[0]["trigger"] == "run_now" and first[0]["outcome"] in ("substantive", "suppressed")
            assert first[0]["provider"] == "offline"
            # Each role polls its own queue only. (A describe reads one partition of the queue: a poller
            # shows there once one of its polls has landed on it.)
            await wait_for(lambda: poller_pids(env, LLM_TASK_QUEUE, "activity") == {llm.pid}, "the llm worker's poller")
            assert llm.pid not in poller_pids(env, TASK_QUEUE, "workflow") | poller_pids(env, TASK_QUEUE, "activity")
            assert workflows.pid not in poller_pids(env, LLM_TASK_QUEUE, "activity")

            # Both up: the next run-now completes with its receipt.
            run(env, HEARTBEATS, "run-now", HEARTBEAT_ID)
            both = await wait_for(lambda: (found := receipts(env)) and len(found) == 2 and found, "the second receipt")
            assert {r["trigger"] for r in both} == {"run_now"} and both[0]["provider"] == "offline"
        finally:
            stop(workflows)
            if llm is not None:
                stop(llm)
        assert workflows.returncode == 0 and (llm is None or llm.returncode == 0)
        started = (tmp_path / "workflows.log").read_text()
        assert f"worker running (role workflows): task queue {TASK_QUEUE!r}" in started
        assert f"worker running (role llm): task queue {LLM_TASK_QUEUE!r} (LLM calls)" in (tmp_path / "llm.log").read_text()


async def wait_for_async(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_tools_routed_to_the_llm_queue_are_registered_tools():
    """MODEL_CALLING_TOOLS names tools by their wire name: each must be a tool of a built-in skill."""
    from contract.llm import MODEL_CALLING_TOOLS, split_tool_name
    from skills.catalog import default_registry

    registry = default_registry()
    for name in MODEL_CALLING_TOOLS:
        skill, tool = split_tool_name(name)
        assert tool in registry.get(skill).tools, name
