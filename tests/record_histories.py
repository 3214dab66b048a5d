"""Record the workflow histories that tests/test_replay.py replays: `python -m tests.record_histories`.

One heartbeat on the time-skipping server goes through several scheduled ticks, a failure, a
run-now, a reconfigure, a pause/resume and a continue-as-new; both runs' histories are written
to tests/histories/ as heartbeat_run_1.v2 and heartbeat_run_2.v2. Earlier code's recordings (no
suffix) stay: every one must keep replaying. Re-record only on purpose, under a new suffix.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import TASK_QUEUE
from manifest.models import HeartbeatSpec
from skills.catalog import default_registry
from skills.registry import Skill, ToolSpec
from store import open_store
from tests.temporal_env import running_worker, time_skipping_env
from workflows.heartbeat import HeartbeatWorkflow

OUT = Path(__file__).parent / "histories"
SUFFIX = "v2"  # a reconfigure takes effect from the next due time (workflow.patched "reconfigure-from-now")


async def record() -> None:
    failing = {"on": True}

    async def check(ctx, args: dict[str, Any]) -> list[dict]:
        if failing["on"]:
            raise RuntimeError("upstream API rejected the query")
        return [{"metric": "signups", "value": 182}]

    skills = default_registry()
    skills.register(Skill(name="probe", description="recording probe", tools={
        "check": ToolSpec(name="check", risk="LOW", description="probe", parameters={"type": "object"}, handler=check)}))

    def config(minutes: int) -> HeartbeatConfig:
        spec = HeartbeatSpec.model_validate({"slug": "kpi", "skill": "probe", "tool": "check", "interval_minutes": minutes,
                                             "cooldown_seconds": 60})
        return HeartbeatConfig(tenant="acme", app="marketing", agent="cmo", tenant_timezone="Europe/Berlin", heartbeat=spec)

    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/h.db")
        async with time_skipping_env() as env, running_worker(env.client, store, skills=skills):
            handle = await env.client.start_workflow(
                HeartbeatWorkflow.run, HeartbeatInput(config=config(10), max_ticks_per_run=5),
                id=config(10).workflow_id, task_queue=TASK_QUEUE)
            first_run = (await handle.describe()).run_id
            await env.sleep(timedelta(minutes=21))          # two failed ticks
            failing["on"] = False
            await handle.signal(HeartbeatWorkflow.run_now)   # a run-now tick
            await env.sleep(timedelta(minutes=1))
            await handle.signal(HeartbeatWorkflow.reconfigure, config(5))
            await handle.signal(HeartbeatWorkflow.pause)
            await env.sleep(timedelta(minutes=6))            # a paused tick
            await handle.signal(HeartbeatWorkflow.resume)
            await env.sleep(timedelta(minutes=30))           # continue-as-new after 5 ticks, then more
            await handle.query(HeartbeatWorkflow.status)
            second_run = (await handle.describe()).run_id
            assert second_run != first_run, "the scenario should continue as new"
            for name, run_id in (("heartbeat_run_1", first_run), ("heartbeat_run_2", second_run)):
                history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                (OUT / f"{name}.{SUFFIX}.json").write_text(history.to_json())
                print(f"wrote {name}: {len(history.events)} events")
            await handle.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
