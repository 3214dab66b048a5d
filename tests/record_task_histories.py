"""Record the task histories that tests/test_replay.py replays: `python -m tests.record_task_histories`.

One task on the time-skipping server, with a poll, an event, a threshold, an a2a and a manual
trigger, goes through two failed polls, an event's case, the same case found again by a poll (a
duplicate), a forced manual run, a threshold crossing, a delegation, a reconfigure, a pause/resume
and a continue-as-new; both runs' histories are written to tests/histories/ as task_run_1 and
task_run_2. Re-record only on purpose, under a new suffix: every earlier recording must keep replaying.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from contract.names import TASK_QUEUE
from contract.task import DelegatedCase, EventCase, ManualRun, TaskConfig, TaskInput, ThresholdCase
from manifest.tasks import TaskSpec
from skills.catalog import default_registry
from skills.registry import Skill, ToolSpec
from store import open_store
from tests.temporal_env import running_worker, time_skipping_env
from workflows.task import TaskWorkflow

OUT = Path(__file__).parent / "histories"
SUFFIX = ""  # the first recording of TaskWorkflow


def config(minutes: int) -> TaskConfig:
    spec = TaskSpec.model_validate({
        "slug": "review_cases", "prompt": "Review each new case.", "dedupe": {"key": "case_id"},
        "triggers": [
            {"type": "heartbeat", "interval_minutes": minutes, "skill": "probe", "tool": "check"},
            {"type": "event", "event": "case.created"},
            {"type": "threshold", "metric": "error_rate", "above": 0.02},
            {"type": "a2a"},
            {"type": "manual"},
        ],
    })
    return TaskConfig(tenant="acme", app="support", agent="reviewer", tenant_timezone="Europe/Berlin", task=spec)


async def record() -> None:
    failing = {"on": True}

    async def check(ctx, args: dict[str, Any]) -> list[dict]:
        if failing["on"]:
            raise RuntimeError("upstream API rejected the query")
        return [{"case_id": "c1", "subject": "refund"}]

    skills = default_registry()
    skills.register(Skill(name="probe", description="recording probe", tools={
        "check": ToolSpec(name="check", risk="LOW", description="probe", parameters={"type": "object"}, handler=check)}))

    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.events.record(tenant="acme", app="support", event_id="evt_1", name="case.created",
                                  body={"case_id": "c1", "subject": "refund"})
        async with time_skipping_env() as env, running_worker(env.client, store, skills=skills):
            handle = await env.client.start_workflow(
                TaskWorkflow.run, TaskInput(config=config(10), max_ticks_per_run=8),
                id=config(10).workflow_id, task_queue=TASK_QUEUE)
            first_run = (await handle.describe()).run_id
            await env.sleep(timedelta(minutes=21))          # two failed polls
            failing["on"] = False
            await handle.signal(TaskWorkflow.event, EventCase(event="case.created", event_id="evt_1"))
            await env.sleep(timedelta(minutes=10))          # the case runs; the next poll finds it again
            await handle.signal(TaskWorkflow.run_now, ManualRun(payload={"case_id": "c1"}, force=True))
            await env.sleep(timedelta(seconds=30))
            crossed = await env.get_current_time()
            await handle.signal(TaskWorkflow.threshold, ThresholdCase(metric="error_rate", value=0.04,
                                                                      crossed_at=crossed))
            await handle.signal(TaskWorkflow.a2a, DelegatedCase(delegation_id="dlg_1", from_agent="lead",
                                                                 input={"case_id": "c2"}))
            await env.sleep(timedelta(seconds=30))
            await handle.signal(TaskWorkflow.reconfigure, config(5))
            await handle.signal(TaskWorkflow.pause)
            await env.sleep(timedelta(minutes=6))            # a paused poll
            await handle.signal(TaskWorkflow.resume)
            await env.sleep(timedelta(minutes=30))           # continue-as-new after 8 runs, then more
            await handle.query(TaskWorkflow.status)
            second_run = (await handle.describe()).run_id
            assert second_run != first_run, "the scenario should continue as new"
            for name, run_id in (("task_run_1", first_run), ("task_run_2", second_run)):
                history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                (OUT / f"{name}{'.' + SUFFIX if SUFFIX else ''}.json").write_text(history.to_json())
                print(f"wrote {name}: {len(history.events)} events")
            await handle.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
