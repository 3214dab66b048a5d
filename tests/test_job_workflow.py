"""JobWorkflow (runtime tasks) on the time-skipping test server, with the real activities and store.

Due times come from schedule.job_times (pinned by tests/test_job_times.py's hand-computed table);
here we check the workflow runs exactly then, ends one-shots, and keeps its row in step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from contract.job import JobConfig, JobInput
from contract.names import TASK_QUEUE
from schedule.job_times import job_timing
from schedule.local_time import local_wall, utc_offset, zone
from store import Store, open_store
from tests.store_json import jsonable
from tests.temporal_env import running_worker, time_skipping_env
from workflows.job import JobWorkflow

TENANT, APP, AGENT = "acme", "marketing", "cmo"
BERLIN = "Europe/Berlin"


@pytest.fixture
async def store(tmp_path):
    opened = await open_store(f"sqlite:///{tmp_path / 'heartbeats.db'}")
    await opened.tenants.upsert(tenant=TENANT, timezone=BERLIN)
    yield opened
    await opened.close()


@pytest.fixture
async def env():
    async with time_skipping_env() as environment:
        yield environment


async def start(client: Client, store: Store, key: str, now: datetime, **timing: str) -> WorkflowHandle:
    config = JobConfig(tenant=TENANT, app=APP, agent=AGENT, key=key, tenant_timezone=BERLIN,
                       prompt=f"Do {key}.", params={"lead": "ada"},
                       timing=job_timing(now=now, tenant_timezone=BERLIN, **timing), created_by="cli",
                       created_at=now.replace(microsecond=0))
    await store.runtime_tasks.create(tenant=TENANT, app=APP, agent=AGENT, key=key, workflow_id=config.workflow_id,
                                     config=config.model_dump(mode="json"), created_by="cli", created_in=None,
                                     max_active=100, max_per_run=5)
    return await client.start_workflow(JobWorkflow.run, JobInput(config=config), id=config.workflow_id,
                                       task_queue=TASK_QUEUE)


async def receipts(store: Store, handle: WorkflowHandle) -> list[dict]:
    return list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=handle.id, limit=1000))))


def at(receipt: dict) -> datetime:
    return datetime.fromisoformat(receipt["at"].replace("Z", "+00:00"))


async def row_status(store: Store, key: str) -> str:
    row = await store.runtime_tasks.get(tenant=TENANT, app=APP, agent=AGENT, key=key)
    assert row is not None
    return row.status


def next_spring_change(after: datetime) -> datetime:
    """The next instant Berlin moves from CET to CEST (a day's precision is enough here)."""
    tz, day = zone(BERLIN), after
    while not (utc_offset(day, tz) == timedelta(hours=1) and utc_offset(day + timedelta(days=1), tz) == timedelta(hours=2)):
        day += timedelta(days=1)
    return day


async def test_every_three_days_over_two_weeks_across_the_dst_change_fires_on_the_local_grid(env, store):
    now = await env.get_current_time()
    change = next_spring_change(now)
    # Created at 09:00 local, nine days before the change.
    created = datetime.combine((change - timedelta(days=9)).date(), datetime.min.time(), UTC) + timedelta(hours=8)
    await env.sleep(created - now)
    async with running_worker(env.client, store):
        handle = await start(env.client, store, "digest", await env.get_current_time(), every="3d")
        await env.sleep(timedelta(days=14))
        got = await receipts(store, handle)
    assert len(got) == 4
    assert [(r["trigger"], r["outcome"]) for r in got] == [("job", "suppressed")] * 4
    local = [local_wall(at(r), zone(BERLIN)) for r in got]
    assert {(t.hour, t.minute) for t in local} == {(9, 0)}  # the same local time, before and after
    assert [(b - a).days for a, b in zip(local, local[1:], strict=False)] == [3, 3, 3]
    offsets = {utc_offset(at(r), zone(BERLIN)) for r in got}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # it did cross the change
    assert await row_status(store, "digest") == "active"


async def test_a_one_shot_runs_once_then_ends_and_its_row_says_done(env, store):
    async with running_worker(env.client, store):
        now = await env.get_current_time()
        handle = await start(env.client, store, "follow-up", now, in_="2h")
        await env.sleep(timedelta(hours=1))
        assert await receipts(store, handle) == []
        await env.sleep(timedelta(hours=2))
        got = await receipts(store, handle)
        described = await handle.describe()
    assert [(r["trigger"], r["outcome"]) for r in got] == [("job", "suppressed")]
    assert abs(at(got[0]) - (now.replace(microsecond=0) + timedelta(hours=2))) < timedelta(seconds=1)
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert await row_status(store, "follow-up") == "done"


async def test_an_at_just_past_runs_at_once(env, store):
    async with running_worker(env.client, store):
        now = await env.get_current_time()
        handle = await start(env.client, store, "late", now, at=(now - timedelta(seconds=30)).isoformat())
        await env.sleep(timedelta(seconds=10))
        got = await receipts(store, handle)
    assert [(r["trigger"], r["outcome"]) for r in got] == [("job", "suppressed")]


async def test_pause_skips_recurring_runs_and_cancel_ends_the_task(env, store):
    async with running_worker(env.client, store):
        handle = await start(env.client, store, "hourly", await env.get_current_time(), every="1h")
        await env.sleep(timedelta(hours=1, minutes=1))
        await handle.signal(JobWorkflow.pause)
        await env.sleep(timedelta(hours=1))
        view = await handle.query(JobWorkflow.status)
        await handle.signal(JobWorkflow.resume)
        await env.sleep(timedelta(hours=1))
        await handle.cancel()
        await env.sleep(timedelta(seconds=5))
        got = await receipts(store, handle)
        described = await handle.describe()
    assert [(r["outcome"], r["reason"]) for r in got] == [("suppressed", None), ("skipped", "paused"),
                                                          ("suppressed", None)]
    assert view.status == "paused" and view.next_run is None
    assert described.status == WorkflowExecutionStatus.CANCELED
    assert await row_status(store, "hourly") == "cancelled"


async def test_run_now_runs_a_one_shot_early_and_ends_it(env, store):
    async with running_worker(env.client, store):
        handle = await start(env.client, store, "early", await env.get_current_time(), in_="1d")
        await handle.signal(JobWorkflow.run_now)
        await env.sleep(timedelta(seconds=10))
        got = await receipts(store, handle)
        described = await handle.describe()
    assert [(r["trigger"], r["outcome"]) for r in got] == [("run_now", "suppressed")]
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert await row_status(store, "early") == "done"
