"""TaskWorkflow on the time-skipping test server, with the real activities and a real store.

Time triggers: the expected due times come from `schedule.upcoming_fires` over the task's time
schedules (pinned by test_schedule.py); here we check the task fires then, and that a case's key
keeps it from running again until its dedupe TTL has passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowHandle

from contract.messages import MAX_CASES_PER_RUN
from contract.names import TASK_QUEUE
from contract.task import DelegatedCase, EventCase, ManualRun, TaskConfig, TaskInput, ThresholdCase
from manifest.tasks import TaskSpec
from schedule import upcoming_fires
from store import Store, open_store
from tests.store_json import jsonable
from tests.temporal_env import running_worker, time_skipping_env
from workflows.task import TaskWorkflow

TENANT = "acme"
ZONE = "Europe/Berlin"


@pytest.fixture
async def store(tmp_path):
    opened = await open_store(f"sqlite:///{tmp_path / 'heartbeats.db'}")
    await opened.tenants.upsert(tenant=TENANT, timezone=ZONE)
    yield opened
    await opened.close()


@pytest.fixture
async def env():
    async with time_skipping_env() as environment:
        yield environment


def task(*triggers: dict, **fields) -> TaskSpec:
    return TaskSpec.model_validate({"slug": "review", "prompt": "Review each new case.", "triggers": list(triggers),
                                    **fields})


POLL = {"type": "heartbeat", "interval_minutes": 60, "skill": "_internal_app_records", "tool": "query",
        "params": {"record_type": "case"}}


async def start(client: Client, spec: TaskSpec, *, max_ticks_per_run: int = 500) -> WorkflowHandle:
    config = TaskConfig(tenant=TENANT, app="support", agent="reviewer", tenant_timezone=ZONE, task=spec)
    return await client.start_workflow(TaskWorkflow.run, TaskInput(config=config, max_ticks_per_run=max_ticks_per_run),
                                       id=config.workflow_id, task_queue=TASK_QUEUE)


async def receipts(store: Store, handle: WorkflowHandle) -> list[dict]:
    """Receipts oldest first."""
    return list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=handle.id, limit=10_000))))


def at(receipt: dict) -> datetime:
    return datetime.fromisoformat(receipt["at"].replace("Z", "+00:00"))


async def put_case(store: Store, case_id: str) -> None:
    await store.records.put(tenant=TENANT, app="support", record_type="case", record_id=case_id,
                            data={"case_id": case_id, "status": "open"})


async def test_schedule_and_poll_fire_on_their_due_times_and_a_case_runs_again_only_after_its_ttl(env, store):
    await put_case(store, "c1")
    await put_case(store, "c2")
    spec = task({"type": "schedule", "cron": "0 9 * * *"}, POLL, dedupe={"ttl_hours": 3})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        started = (await handle.describe()).start_time
        await env.sleep(timedelta(days=1))
        got = await receipts(store, handle)
    end = started + timedelta(days=1)
    calendar, poll = spec.time_schedules()
    daily = [d for d in upcoming_fires(calendar, tenant_id=TENANT, tenant_timezone=ZONE, after=started, count=3)
             if d <= end]
    hourly = [d for d in upcoming_fires(poll, tenant_id=TENANT, tenant_timezone=ZONE, after=started, count=30)
              if d <= end]
    assert len(daily) == 1 and 23 <= len(hourly) <= 24

    scheduled = [r for r in got if r["trigger"] == "schedule"]
    assert [at(r) for r in scheduled] == daily
    # A schedule's case is its due time: new each day, so it runs.
    assert [(r["outcome"], r["cases"], r["duplicates"]) for r in scheduled] == [("substantive", 1, 0)]

    polls = [r for r in got if r["trigger"] == "heartbeat"]
    assert [at(r) for r in polls] == hourly
    # Both cases run at the first poll; then they are duplicates until 3 hours after that run.
    expected, last_run = [], None
    for due in hourly:
        if last_run is None or due - last_run >= timedelta(hours=3):
            expected.append(("substantive", None, 2, 0))
            last_run = due
        else:
            expected.append(("skipped", "duplicate", 2, 2))
    assert [(r["outcome"], r["reason"], r["cases"], r["duplicates"]) for r in polls] == expected


async def test_a_new_case_runs_while_the_seen_ones_are_duplicates(env, store):
    await put_case(store, "c1")
    spec = task(POLL, {"type": "manual"}, dedupe={"key": "case_id"})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        await env.sleep(timedelta(minutes=61))
        await put_case(store, "c2")
        await env.sleep(timedelta(minutes=60))
        got = await receipts(store, handle)
    assert [(r["outcome"], r["cases"], r["duplicates"]) for r in got] == [("substantive", 1, 0), ("substantive", 2, 1)]


async def test_pushed_cases_share_one_key_space_and_force_bypasses_it(env, store):
    """An event, a delegation and a manual run naming the same case id run it once; a forced manual
    run runs it again and its receipt says so; a threshold crossing is its own case."""
    spec = task({"type": "event", "event": "case.created"}, {"type": "a2a"}, {"type": "manual"},
                {"type": "threshold", "metric": "error_rate", "above": 0.02}, dedupe={"key": "case_id"})
    await store.events.record(tenant=TENANT, app="support", event_id="evt_1", name="case.created",
                              body={"case_id": "c9", "subject": "refund"})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        await handle.signal(TaskWorkflow.event, EventCase(event="case.created", event_id="evt_1"))
        await env.sleep(timedelta(seconds=5))
        await handle.signal(TaskWorkflow.a2a, DelegatedCase(delegation_id="d1", from_agent="lead",
                                                             input={"case_id": "c9"}))
        await env.sleep(timedelta(seconds=5))
        await handle.signal(TaskWorkflow.run_now, ManualRun(payload={"case_id": "c9"}))
        await env.sleep(timedelta(seconds=5))
        await handle.signal(TaskWorkflow.run_now, ManualRun(payload={"case_id": "c9"}, force=True))
        await env.sleep(timedelta(seconds=5))
        crossed = await env.get_current_time()
        await handle.signal(TaskWorkflow.threshold, ThresholdCase(metric="error_rate", value=0.05, crossed_at=crossed))
        await handle.signal(TaskWorkflow.event, EventCase(event="case.closed", event_id="evt_2"))  # not listened to
        await env.sleep(timedelta(seconds=5))
        got = await receipts(store, handle)
    assert [(r["trigger"], r["outcome"], r["reason"], r["cases"], r["duplicates"], r["forced"]) for r in got] == [
        ("event", "substantive", None, 1, 0, False),
        ("a2a", "skipped", "duplicate", 1, 1, False),
        ("manual", "skipped", "duplicate", 1, 1, False),
        ("manual", "substantive", None, 1, 0, True),
        ("threshold", "substantive", None, 1, 0, False),
    ]


async def test_dedupe_ttl_expiry_lets_a_pushed_case_run_again(env, store):
    spec = task({"type": "manual"}, dedupe={"key": "case_id", "ttl_hours": 2})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        for wait in (timedelta(minutes=1), timedelta(hours=2, minutes=1), timedelta(minutes=1)):
            await handle.signal(TaskWorkflow.run_now, ManualRun(payload={"case_id": "c1"}))
            await env.sleep(wait)
        got = await receipts(store, handle)
    # Runs at 0; at 1 min the case is a duplicate; at 2 h 2 min its 2-hour TTL has passed.
    assert [(r["outcome"], r["reason"]) for r in got] == [
        ("substantive", None), ("skipped", "duplicate"), ("substantive", None)]


async def test_a_paused_task_skips_its_polls_and_pushed_cases_but_runs_a_manual_run(env, store):
    await put_case(store, "c1")
    spec = task(POLL, {"type": "event", "event": "case.created"}, {"type": "manual"})
    await store.events.record(tenant=TENANT, app="support", event_id="evt_1", name="case.created", body={"x": 1})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        await handle.signal(TaskWorkflow.pause)
        await handle.signal(TaskWorkflow.event, EventCase(event="case.created", event_id="evt_1"))
        await env.sleep(timedelta(minutes=61))
        await handle.signal(TaskWorkflow.run_now)
        await env.sleep(timedelta(seconds=5))
        view = await handle.query(TaskWorkflow.status)
        got = await receipts(store, handle)
    assert view.status == "paused" and view.next_run is None
    # Each kind once at least (a loaded machine may see a second poll in the skipped hour); only the
    # manual run ran, once.
    assert {(r["trigger"], r["outcome"], r["reason"]) for r in got} == {
        ("event", "skipped", "paused"), ("heartbeat", "skipped", "paused"), ("manual", "substantive", None)}
    assert [r["trigger"] for r in got if r["outcome"] == "substantive"] == ["manual"]


async def test_the_task_continues_as_new_with_its_waiting_state(env, store):
    await put_case(store, "c1")
    spec = task(POLL, dedupe={"ttl_hours": 1})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec, max_ticks_per_run=3)
        first_run = (await handle.describe()).run_id
        await env.sleep(timedelta(hours=7, minutes=1))
        view = await handle.query(TaskWorkflow.status)
        latest = (await env.client.get_workflow_handle(handle.id).describe()).run_id
        got = await receipts(store, handle)
    assert latest != first_run
    assert len(got) == 7 and all(r["outcome"] == "substantive" for r in got)
    assert view.status == "active" and view.failure_count == 0


async def test_a_burst_of_events_runs_every_new_case_once_across_runs(env, store):
    """More new cases than one run takes: the rest are deferred to the next run, none is lost; the
    duplicates among them cost no run."""
    spec = task({"type": "event", "event": "case.created"}, dedupe={"key": "case_id"})
    distinct = MAX_CASES_PER_RUN + 5
    for i in range(distinct * 3):  # each case three times, under three event ids
        await store.events.record(tenant=TENANT, app="support", event_id=f"evt_{i}", name="case.created",
                                  body={"case_id": f"c{i % distinct}"})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        for i in range(distinct * 3):
            await handle.signal(TaskWorkflow.event, EventCase(event="case.created", event_id=f"evt_{i}"))
        await env.sleep(timedelta(seconds=30))
        got = await receipts(store, handle)
    ran = [r for r in got if r["outcome"] == "substantive"]
    processed = await store.dedupe.seen(tenant=TENANT, task_id=handle.id, keys=[f"c{i}" for i in range(distinct + 1)],
                                        now=await env.get_current_time())
    assert processed == {f"c{i}" for i in range(distinct)}
    # Every case reached the agent exactly once: the rows of the substantive runs' turns.
    turns = [r["rows"] for r in ran]
    assert sum(turns) == distinct and max(turns) <= MAX_CASES_PER_RUN


async def test_a_task_without_a_manual_trigger_refuses_run_now(env, store):
    spec = task({"type": "event", "event": "case.created"})
    async with running_worker(env.client, store):
        handle = await start(env.client, spec)
        await handle.signal(TaskWorkflow.run_now, ManualRun(payload={"case_id": "c1"}, force=True))
        await env.sleep(timedelta(seconds=5))
        got = await receipts(store, handle)
    assert [(r["trigger"], r["outcome"], r["reason"]) for r in got] == [("manual", "refused", "no_manual_trigger")]
