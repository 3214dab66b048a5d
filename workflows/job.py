"""JobWorkflow: one runtime task (`job:{tenant}:{app}:{agent}:{key}`), on the entity design.

It waits for each due time of its timing (schedule.job_times) and runs one durable agent turn of the
creating agent with the task's prompt and params, then COMPLETE_TICK (reply protocol, receipt).

- A one-shot runs once and ends (its row says `done`), whatever the run's outcome: the receipt
  says what happened. Paused at its due time, it waits for `resume` and then runs.
- A recurring task runs at each due time; paused, a due time leaves `skipped / paused`; 5 failed
  runs in a row disable it (`enable` re-arms it), as for a heartbeat.
- `run_now` runs it at once (a one-shot then ends). Cancelling the workflow (the client's cancel,
  an uninstall, `temporal workflow cancel`) ends it and marks its row `cancelled`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.heartbeat import HeartbeatStatusView
    from contract.job import JobConfig, JobEndedRequest, JobInput, JobState, JobStatus
    from contract.messages import CompleteTickRequest, TickCompletion, TickRef
    from contract.names import (
        COMPLETE_TICK,
        JOB_ENDED,
        JOB_WORKFLOW,
        QUERY_STATUS,
        SIGNAL_ENABLE,
        SIGNAL_PAUSE,
        SIGNAL_RESUME,
        SIGNAL_RUN_NOW,
    )
    from contract.vocabulary import Trigger, iso_utc
    from schedule.job_times import next_job_fire
    from workflows.activity_options import STORE_ACTIVITY
    from workflows.entity import EntityWorkflow, milliseconds
    from workflows.failures import excerpt, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn

JOB_SIGNALS = (SIGNAL_RUN_NOW, SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_ENABLE)


@workflow.defn(name=JOB_WORKFLOW)
class JobWorkflow(EntityWorkflow):
    KNOWN_SIGNALS = JOB_SIGNALS

    @workflow.init
    def __init__(self, input: JobInput) -> None:
        self._config: JobConfig = input.config
        state = input.state
        self._init_entity(input.config.workflow_id, state, input.max_ticks_per_run)
        self._runs = state.runs
        self._run_now_pending = False

    @workflow.run
    async def run(self, input: JobInput) -> None:
        self._publish_search_attributes()
        try:
            while True:
                if self._should_continue_as_new():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(JobInput(config=self._config, state=self._snapshot(),
                                                      max_ticks_per_run=self._max_ticks_per_run))
                woken = await self._wait_for_run()
                if woken is None:
                    break  # a one-shot whose time has passed without a run: nothing is owed
                await self._run(*woken)
                if not self._config.recurring and self._runs:
                    break
        except asyncio.CancelledError:
            await self._ended("cancelled")
            raise
        await self._ended("done")

    # --- messages ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_RUN_NOW)
    def run_now(self) -> None:
        """Run once now, bypassing its timing and pause (a one-shot then ends)."""
        self._run_now_pending = True

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> HeartbeatStatusView:
        config = self._config
        return HeartbeatStatusView(
            id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent, slug=config.key,
            status=self._status, failure_count=self._failure_count, next_run=self._next_run(),
            last_run=iso_utc(self._last_run), last_heartbeat_ok_at=None, ignored_signals=list(self._ignored_signals))

    # --- waiting -------------------------------------------------------------------------------

    async def _wait_for_run(self) -> tuple[Trigger, datetime] | None:
        """Block until a run is due or asked for: (trigger, time); None when no run will ever be due."""
        while True:
            self._woken = False
            if self._run_now_pending:
                self._run_now_pending = False
                return "run_now", workflow.now()
            due = self._compute_next_due()
            self._next_due = due
            self._publish_details()
            if due is None and self._status != "disabled":
                return None
            if due is not None and due <= workflow.now():
                if self._status == "paused" and not self._config.recurring:
                    await workflow.wait_condition(lambda: self._status != "paused" or self._run_now_pending)
                    continue
                return "job", due
            try:
                await workflow.wait_condition(
                    lambda: self._run_now_pending or self._woken,
                    timeout=None if due is None else due - workflow.now(),
                    timeout_summary=f"next run {iso_utc(due)}" if due else None,
                )
            except TimeoutError:
                continue

    def _compute_next_due(self) -> datetime | None:
        if self._status == "disabled":
            return None
        # Handled through `last_due`; before the first run, through the moment before creation (a
        # one-shot due at its creation, an `at` a few seconds in the past, still runs).
        after = self._last_due or (self._config.created_at - timedelta(seconds=1))
        return next_job_fire(self._config.timing, after=after, tenant_timezone=self._config.tenant_timezone)

    # --- one run -------------------------------------------------------------------------------

    async def _run(self, trigger: Trigger, at: datetime) -> None:
        now = workflow.now()
        self._begin_tick()
        config = self._config
        tick = TickRef(heartbeat_id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent,
                       slug=config.key, tick_id=f"{workflow.info().run_id}/{self._ticks_this_run}", at=at,
                       trigger=trigger)
        if trigger == "job":
            self._last_due = max(at, now)  # handled through now: missed due times are not replayed
            if self._status == "paused":
                await self._receipt(tick, "skipped", reason="paused")
                return
        elif self._status == "disabled":
            await self._receipt(tick, "refused", reason="disabled")
            return
        agent = f"agent {config.agent} ({config.model_tier})"
        try:
            reply = await run_agent_turn(AgentTurn(
                tick=tick, prompt=config.prompt, rows=[config.params] if config.params else [],
                model_tier=config.model_tier, conversation_mode="isolated", purpose="job",
                summary=f"runtime task {config.key} · {agent}"))
            completion: TickCompletion = await workflow.execute_local_activity(
                COMPLETE_TICK,
                CompleteTickRequest(tick=tick, reply=reply, rows=1 if config.params else 0,
                                    conversation_mode="isolated", duration_ms=milliseconds(workflow.now() - now)),
                result_type=TickCompletion, summary=f"{agent} → {excerpt(reply.text)}", **STORE_ACTIVITY)
        except FailureError as failure:
            if is_cancellation(failure):
                raise
            self._last_run = now
            self._runs += 1  # a one-shot's run happened, though it failed: the receipt says so
            await self._record_failure(tick, failure, started=now)
            return
        self._last_run = now
        self._runs += 1
        self._record_success()
        if completion.escalated:
            await self._wake_vision(tick, reply.text)

    async def _ended(self, status: JobStatus) -> None:
        config = self._config
        try:
            await workflow.execute_local_activity(
                JOB_ENDED, JobEndedRequest(tenant=config.tenant, app=config.app, agent=config.agent, key=config.key,
                                           status=status),
                summary=f"runtime task {status}", **STORE_ACTIVITY)
        except FailureError as failure:
            if is_cancellation(failure):
                raise
            workflow.logger.exception("%s: its row was not marked %s", config.workflow_id, status)

    def _snapshot(self) -> JobState:
        return JobState(status=self._status, failure_count=self._failure_count, last_run=self._last_run,
                        last_due=self._last_due, runs=self._runs, ticks=self._ticks_total)
