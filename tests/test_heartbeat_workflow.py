"""HeartbeatWorkflow on the time-skipping test server, with the real activities and a real store.

Expected due times come from `schedule.upcoming_fires`, whose semantics test_schedule.py pins
with hand-computed instants: here we check the workflow fires exactly then, and only then.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from contract.heartbeat import HeartbeatConfig, HeartbeatInput, HeartbeatState, HeartbeatStatusView
from contract.names import TASK_QUEUE
from contract.vocabulary import iso_utc
from manifest.models import HeartbeatSpec
from schedule import upcoming_fires
from skills.catalog import default_registry
from skills.registry import Skill, SkillRegistry, ToolSpec
from store import Store, open_store
from tests.store_json import jsonable
from tests.temporal_env import running_worker, time_skipping_env
from worker import WorkerSettings
from workflows.heartbeat import HeartbeatWorkflow

TENANT = "acme"


@pytest.fixture
async def store(tmp_path):
    opened = await open_store(f"sqlite:///{tmp_path / 'heartbeats.db'}")
    await opened.tenants.upsert(tenant=TENANT, timezone="Europe/Berlin")
    yield opened
    await opened.close()


@pytest.fixture
async def env():
    async with time_skipping_env() as environment:
        yield environment


class Switch:
    """A LOW-risk test skill whose tool fails while `broken` is set: an app fault."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def registry(self) -> SkillRegistry:
        async def check(ctx, args: dict[str, Any]) -> list[dict]:
            self.calls += 1
            if self.broken:
                raise RuntimeError("upstream API rejected the query")
            return [{"ok": True}]

        registry = default_registry()
        registry.register(Skill(name="probe", description="test probe", tools={
            "check": ToolSpec(name="check", risk="LOW", description="probe", parameters={"type": "object"}, handler=check),
        }))
        return registry


def spec(**fields) -> HeartbeatSpec:
    base = {"slug": "kpi", "skill": "_internal_app_records", "tool": "query", "params": {"record_type": "kpi"}}
    return HeartbeatSpec.model_validate({**base, **fields})


async def start(client: Client, heartbeat: HeartbeatSpec, *, agent: str = "cmo", max_ticks_per_run: int = 500,
                app: str = "marketing") -> WorkflowHandle:
    config = HeartbeatConfig(tenant=TENANT, app=app, agent=agent, tenant_timezone="Europe/Berlin", heartbeat=heartbeat)
    return await client.start_workflow(
        HeartbeatWorkflow.run,
        HeartbeatInput(config=config, max_ticks_per_run=max_ticks_per_run),
        id=config.workflow_id,
        task_queue=TASK_QUEUE,
    )


async def receipts(store: Store, handle: WorkflowHandle) -> list[dict]:
    """Receipts oldest first."""
    return list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=handle.id, limit=10_000))))


def at(receipt: dict) -> datetime:
    return datetime.fromisoformat(receipt["at"].replace("Z", "+00:00"))


async def status(handle: WorkflowHandle) -> HeartbeatStatusView:
    return await handle.query(HeartbeatWorkflow.status)


async def test_hourly_heartbeat_over_three_days_fires_exactly_on_its_due_times(env, store):
    await store.records.put(tenant=TENANT, app="marketing", record_type="kpi", record_id="signups",
                           data={"metric": "signups", "value": 182})
    heartbeat = spec(interval_minutes=60, active_hours={"start": "07:00", "end": "23:00"}, cooldown_seconds=300)
    async with running_worker(env.client, store):
        handle = await start(env.client, heartbeat)
        started = (await handle.describe()).start_time
        await env.sleep(timedelta(days=3))
        got = await receipts(store, handle)
        view = await status(handle)
    expected = upcoming_fires(heartbeat, tenant_id=TENANT, tenant_timezone="Europe/Berlin", after=started, count=200)
    expected = [due for due in expected if due <= started + timedelta(days=3)]
    assert 45 <= len(expected) <= 51  # 16 active hours a day, three days
    assert [at(r) for r in got] == expected
    assert {(r["trigger"], r["outcome"]) for r in got} == {("schedule", "substantive")}
    assert all(r["rows"] == 1 for r in got)
    assert view.status == "active" and view.failure_count == 0
    assert view.last_run == got[-1]["at"]


async def test_empty_prefilter_is_a_skipped_tick_without_the_agent(env, store):
    async with running_worker(env.client, store):
        handle = await start(env.client, spec(interval_minutes=30))
        fires = upcoming_fires(spec(interval_minutes=30), tenant_id=TENANT,
                               after=(await handle.describe()).start_time, count=4)
        await sleep_until(env, fires[3] + timedelta(seconds=30))
        got = await receipts(store, handle)
    assert [at(r) for r in got] == fires
    assert {(r["outcome"], r["reason"], r["provider"]) for r in got} == {("skipped", "prefilter_empty", None)}


async def test_invoke_always_wakes_the_agent_and_heartbeat_ok_is_suppressed(env, store):
    async with running_worker(env.client, store):
        heartbeat = spec(interval_minutes=30, invoke_always=True)
        handle = await start(env.client, heartbeat)
        fires = upcoming_fires(heartbeat, tenant_id=TENANT, after=(await handle.describe()).start_time, count=2)
        await sleep_until(env, fires[1] + timedelta(seconds=30))
        got = await receipts(store, handle)
        view = await status(handle)
    assert [r["outcome"] for r in got] == ["suppressed", "suppressed"]
    assert view.last_heartbeat_ok_at is not None


async def test_the_production_worker_settings_tick_the_same(env, store):
    # Tests run the sandbox; production runs without it (worker.WorkerSettings): both must tick alike.
    await store.records.put(tenant=TENANT, app="marketing", record_type="kpi", record_id="k1", data={"v": 1})
    heartbeat = spec(interval_minutes=30)
    async with running_worker(env.client, store, settings=WorkerSettings()):
        handle = await start(env.client, heartbeat)
        fires = upcoming_fires(heartbeat, tenant_id=TENANT, after=(await handle.describe()).start_time, count=2)
        await sleep_until(env, fires[1] + timedelta(seconds=30))
        got = await receipts(store, handle)
    assert not WorkerSettings().sandboxed
    assert [at(r) for r in got] == fires
    assert [(r["outcome"], r["rows"]) for r in got] == [("substantive", 1)] * 2


async def test_cooldown_skips_grid_points_with_a_receipt(env, store):
    heartbeat = spec(interval_minutes=5, cooldown_seconds=720)
    async with running_worker(env.client, store):
        handle = await start(env.client, heartbeat)
        started = (await handle.describe()).start_time
        await env.sleep(timedelta(hours=1))
        got = await receipts(store, handle)
    ran = [at(r) for r in got if r["reason"] != "cooldown"]
    skipped = [at(r) for r in got if r["reason"] == "cooldown"]
    expected = [d for d in upcoming_fires(heartbeat, tenant_id=TENANT, after=started, count=20)
                if d <= started + timedelta(hours=1)]
    assert ran == expected
    assert len(skipped) == len(got) - len(ran) and skipped  # every other grid point or so
    assert all(b - a >= timedelta(seconds=720) for a, b in zip(ran, ran[1:], strict=False))


async def test_after_an_outage_exactly_one_catch_up_tick_then_the_grid(env, store):
    # A workflow whose schedule was last handled five hours ago is what any outage leaves behind
    # (worker or server down: the timer fires late). The test server cannot skip time while a
    # workflow task waits for a missing worker, so the outage is given as that state; the
    # SIGKILL drills of `make drills` exercise the real thing.
    heartbeat = spec(interval_minutes=60)
    now = await env.get_current_time()
    handled_through = now - timedelta(hours=5)
    config = HeartbeatConfig(tenant=TENANT, app="marketing", agent="cmo", heartbeat=heartbeat)
    async with running_worker(env.client, store):
        handle = await env.client.start_workflow(
            HeartbeatWorkflow.run, HeartbeatInput(config=config, state=HeartbeatState(last_due=handled_through)),
            id=config.workflow_id, task_queue=TASK_QUEUE)
        resumed_at = (await handle.describe()).start_time
        await env.sleep(timedelta(hours=3))
        got = await receipts(store, handle)
    missed = upcoming_fires(heartbeat, tenant_id=TENANT, after=handled_through, count=1)[0]
    catch_up, rest = got[0], got[1:]
    assert at(catch_up) == missed  # the first missed due time, run once, late
    assert [at(r) for r in rest] == upcoming_fires(heartbeat, tenant_id=TENANT, after=resumed_at, count=3)
    assert len(got) == 4  # no burst of the other four missed due times


async def sleep_until(env, instant: datetime) -> None:
    await env.sleep(max(instant - await env.get_current_time(), timedelta(0)))


async def test_five_failures_disable_then_enable_rearms(env, store):
    switch = Switch()
    heartbeat = spec(skill="probe", tool="check", params={}, interval_minutes=5)
    async with running_worker(env.client, store, skills=switch.registry()):
        handle = await start(env.client, heartbeat)
        fires = upcoming_fires(heartbeat, tenant_id=TENANT, after=(await handle.describe()).start_time, count=10)
        await sleep_until(env, fires[2] + timedelta(seconds=30))
        view = await status(handle)
        assert (view.status, view.failure_count) == ("active", 3)  # failing, not yet disabled
        await sleep_until(env, fires[4] + timedelta(seconds=30))
        view = await status(handle)
        assert (view.status, view.failure_count, view.next_run) == ("disabled", 5, None)
        calls = switch.calls
        await env.sleep(timedelta(hours=1))
        assert switch.calls == calls  # a disabled heartbeat is not woken by its schedule
        await handle.signal(HeartbeatWorkflow.run_now)
        await env.sleep(timedelta(seconds=5))
        switch.broken = False
        await handle.signal(HeartbeatWorkflow.enable)
        await env.sleep(timedelta(minutes=6))
        view = await status(handle)
        got = await receipts(store, handle)
    assert [r["outcome"] for r in got[:5]] == ["failed"] * 5
    assert {r["reason"] for r in got[:5]} == {"PrefilterFailed"}
    assert "upstream API rejected the query" in got[0]["error"]
    assert (got[5]["trigger"], got[5]["outcome"], got[5]["reason"]) == ("run_now", "refused", "disabled")
    assert len(got) == 7 and got[6]["outcome"] == "substantive"  # back on the grid, no catch-up
    assert at(got[6]) > at(got[5])
    assert (view.status, view.failure_count) == ("active", 0)


async def test_run_now_signals_coalesce_and_bypass_active_hours(env, store):
    # A weekly heartbeat whose window is closed now: only run_now can make it tick.
    heartbeat = spec(schedule_type="weekly", time_of_day="03:00", day_of_week=2,
                     active_hours={"start": "02:00", "end": "04:00"}, invoke_always=True)
    handle = await start(env.client, heartbeat)
    for _ in range(5):
        await handle.signal(HeartbeatWorkflow.run_now)  # all pending before any worker runs
    async with running_worker(env.client, store):
        await env.sleep(timedelta(seconds=30))
        got = await receipts(store, handle)
    assert [(r["trigger"], r["outcome"]) for r in got] == [("run_now", "suppressed")]


async def test_pause_skips_scheduled_ticks_resume_restores(env, store):
    async with running_worker(env.client, store):
        handle = await start(env.client, spec(interval_minutes=30))
        await handle.signal(HeartbeatWorkflow.pause)
        # The salted phase decides where the due times fall, so wait on them, not on fixed spans.
        fires = upcoming_fires(spec(interval_minutes=30), tenant_id=TENANT,
                               after=(await handle.describe()).start_time, count=3)
        await sleep_until(env, fires[1] + timedelta(seconds=30))
        assert (await status(handle)).status == "paused"
        await handle.signal(HeartbeatWorkflow.resume)
        await sleep_until(env, fires[2] + timedelta(seconds=30))
        got = await receipts(store, handle)
    assert [r["reason"] for r in got] == ["paused", "paused", "prefilter_empty"]


async def test_reconfigure_changes_the_cadence_in_place(env, store):
    switch = Switch()
    async with running_worker(env.client, store, skills=switch.registry()):
        handle = await start(env.client, spec(skill="probe", tool="check", params={}, interval_minutes=60))
        fires = upcoming_fires(spec(interval_minutes=60), tenant_id=TENANT, after=(await handle.describe()).start_time,
                               count=3)
        await sleep_until(env, fires[1] + timedelta(seconds=30))
        assert (await status(handle)).failure_count == 2
        new = HeartbeatConfig(tenant=TENANT, app="marketing", agent="cmo", tenant_timezone="Europe/Berlin",
                              heartbeat=spec(skill="probe", tool="check", params={}, interval_minutes=10))
        await handle.signal(HeartbeatWorkflow.reconfigure, new)
        run_id = (await handle.describe()).run_id
        await env.sleep(timedelta(minutes=1))
        assert (await status(handle)).failure_count == 2  # kept across the reconfigure
        switch.broken = False
        before = len(await receipts(store, handle))
        await env.sleep(timedelta(hours=1))
        got = (await receipts(store, handle))[before:]
    assert len(got) == 6  # every 10 minutes now
    assert (await handle.describe()).run_id == run_id  # in place, same run


async def test_a_shorter_interval_takes_effect_from_the_next_due_time_not_at_once(env, store):
    """60 -> 10 minutes, 50 minutes after a tick: the 10-minute grid points since that tick are not
    owed. The next tick is the new grid's first point after the reconfigure, and none runs at once."""
    async with running_worker(env.client, store):
        handle = await start(env.client, spec(interval_minutes=60))
        hourly = upcoming_fires(spec(interval_minutes=60), tenant_id=TENANT,
                                after=(await handle.describe()).start_time, count=2)
        await sleep_until(env, hourly[0] + timedelta(minutes=50))
        assert [at(r) for r in await receipts(store, handle)] == [hourly[0]]
        faster = spec(interval_minutes=10)
        reconfigured_at = await env.get_current_time()
        await handle.signal(HeartbeatWorkflow.reconfigure, HeartbeatConfig(
            tenant=TENANT, app="marketing", agent="cmo", tenant_timezone="Europe/Berlin", heartbeat=faster))
        await env.sleep(timedelta(seconds=5))
        assert [at(r) for r in await receipts(store, handle)] == [hourly[0]]  # nothing ran at once
        [next_due] = upcoming_fires(faster, tenant_id=TENANT, after=reconfigured_at, count=1)
        assert (await status(handle)).next_run == iso_utc(next_due)
        await sleep_until(env, next_due + timedelta(seconds=30))
        got = await receipts(store, handle)
    assert [at(r) for r in got] == [hourly[0], next_due]


async def test_a_cooldown_beyond_the_bound_cannot_stall_a_running_heartbeat(env, store):
    """Validation bounds the cooldown of an authored manifest; a running workflow's input (started
    before the bound existed) still decodes, and its cooldown counts as the 30-day maximum instead
    of overflowing on every tick."""
    heartbeat = spec(interval_minutes=5, invoke_always=True).model_copy(update={"cooldown_seconds": 10**14})
    async with running_worker(env.client, store):
        handle = await start(env.client, heartbeat)
        await handle.signal(HeartbeatWorkflow.run_now)
        fires = upcoming_fires(spec(interval_minutes=5), tenant_id=TENANT,
                               after=(await handle.describe()).start_time, count=2)
        await sleep_until(env, fires[1] + timedelta(seconds=30))
        got = await receipts(store, handle)
    assert [(r["trigger"], r["outcome"], r["reason"]) for r in got] == [
        ("run_now", "suppressed", None), ("schedule", "skipped", "cooldown"), ("schedule", "skipped", "cooldown")]


async def test_continue_as_new_carries_state(env, store):
    switch = Switch()
    heartbeat = spec(skill="probe", tool="check", params={}, interval_minutes=5)
    async with running_worker(env.client, store, skills=switch.registry()):
        handle = await start(env.client, heartbeat, max_ticks_per_run=3)
        first = await handle.describe()
        fires = upcoming_fires(heartbeat, tenant_id=TENANT, after=first.start_time, count=20)
        await sleep_until(env, fires[3] + timedelta(seconds=30))  # 4 failures, across a continue-as-new
        view = await status(handle)
        assert (view.status, view.failure_count) == ("active", 4)
        assert (await handle.describe()).run_id != first.run_id
        switch.broken = False
        await sleep_until(env, fires[11] + timedelta(seconds=30))
        got = await receipts(store, handle)
        view = await status(handle)
    assert [at(r) for r in got] == fires[:12]  # none repeated or lost at the run boundaries
    assert [r["outcome"] for r in got] == ["failed"] * 4 + ["substantive"] * 8
    assert view.failure_count == 0 and view.last_run == got[-1]["at"]


async def test_uninstall_cancel_ends_the_workflow(env, store):
    async with running_worker(env.client, store):
        handle = await start(env.client, spec(interval_minutes=60))
        await handle.cancel()
        await env.sleep(timedelta(seconds=5))
        description = await handle.describe()
    assert description.status.name == "CANCELED"


async def test_a_slow_prefilter_does_not_delay_the_next_tick(tmp_path, store):
    """The server starts the next timer when the tick's workflow task completes, after its local
    activities. The timer is counted from `workflow.now()`, which the SDK moves on as each local
    activity resolves; counted from the tick's start it would fire late by the pre-filter's
    duration. Real time on a dev server: a 1.5 s pre-filter, then the armed timer's fire time."""
    from temporalio.api.enums.v1 import EventType

    from contract.names import PREFILTER
    from tests.temporal_env import dev_server

    slow_s = 1.5

    async def slow_check(ctx, args: dict[str, Any]) -> list[dict]:
        await asyncio.sleep(slow_s)
        return []

    registry = default_registry()
    registry.register(Skill(name="slow", description="a slow upstream", tools={
        "check": ToolSpec(name="check", risk="LOW", description="slow", parameters={"type": "object"},
                          handler=slow_check)}))
    heartbeat = spec(skill="slow", tool="check", params={}, interval_minutes=5)
    config = HeartbeatConfig(tenant=TENANT, app="marketing", agent="cmo", heartbeat=heartbeat)
    async with dev_server(tmp_path) as (client, _), running_worker(client, store, skills=registry):
        # Handled through an hour ago: the first task runs the missed tick at once, then arms the next.
        handle = await client.start_workflow(
            HeartbeatWorkflow.run,
            HeartbeatInput(config=config, state=HeartbeatState(last_due=datetime.now(UTC) - timedelta(hours=1))),
            id=config.workflow_id, task_queue=TASK_QUEUE)
        for _ in range(100):
            events = list((await handle.fetch_history()).events)
            timers = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
            if timers:
                break
            await asyncio.sleep(0.1)
        next_run = datetime.fromisoformat((await status(handle)).next_run.replace("Z", "+00:00"))
        await handle.cancel()
    task_started = next(e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    marker = next(e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
    assert PREFILTER in str(marker.marker_recorded_event_attributes.details)
    timer = timers[0]
    armed_at = timer.event_time.ToDatetime(tzinfo=UTC)
    assert armed_at - task_started.event_time.ToDatetime(tzinfo=UTC) >= timedelta(seconds=slow_s)
    fires_at = armed_at + timer.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    assert abs(fires_at - next_run) < timedelta(seconds=0.5)  # not ~1.5 s late
