"""Record the runtime-task history that tests/test_replay.py replays: `python -m tests.record_job_histories`.

One recurring runtime task (every hour) on the time-skipping server: two runs, a pause (a skipped
run), a resume, a run-now, and a cancel (its row marked). Written to tests/histories/job_run.json.
Re-record only on purpose, under a new suffix: every earlier recording must keep replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowFailureError

from contract.job import JobConfig, JobInput
from contract.names import TASK_QUEUE
from schedule.job_times import job_timing
from store import open_store
from tests.temporal_env import running_worker, time_skipping_env
from workflows.job import JobWorkflow

OUT = Path(__file__).parent / "histories"
NAME = "job_run"


async def record() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.tenants.upsert(tenant="acme", timezone="Europe/Berlin")
        async with time_skipping_env() as env, running_worker(env.client, store):
            now = (await env.get_current_time()).replace(microsecond=0)
            config = JobConfig(tenant="acme", app="sales", agent="lead", key="hourly-check", tenant_timezone="Europe/Berlin",
                               prompt="Check the pipeline.", params={"stage": "demo"},
                               timing=job_timing(every="1h", now=now, tenant_timezone="Europe/Berlin"),
                               created_by="cli", created_at=now)
            await store.runtime_tasks.create(tenant="acme", app="sales", agent="lead", key="hourly-check",
                                             workflow_id=config.workflow_id, config=config.model_dump(mode="json"),
                                             created_by="cli", created_in=None, max_active=100, max_per_run=5)
            handle = await env.client.start_workflow(JobWorkflow.run, JobInput(config=config), id=config.workflow_id,
                                                     task_queue=TASK_QUEUE)
            await env.sleep(timedelta(hours=2, minutes=1))   # two runs
            await handle.signal(JobWorkflow.pause)
            await env.sleep(timedelta(hours=1))              # a skipped run
            await handle.signal(JobWorkflow.resume)
            await handle.signal(JobWorkflow.run_now)
            await env.sleep(timedelta(minutes=1))
            await handle.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
            history = await handle.fetch_history()
            (OUT / f"{NAME}.json").write_text(history.to_json())
            print(f"wrote {NAME}: {len(history.events)} events")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
