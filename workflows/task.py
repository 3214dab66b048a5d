"""TaskWorkflow: one long-lived workflow per installed task (`task:{tenant}:{app}:{agent}:{slug}`).

The same entity design as a heartbeat (workflows/entity.py), with more than one trigger:

- the time triggers (schedule, heartbeat) are waited for as a heartbeat waits for its grid: the
  next due time is the earliest of theirs strictly after the instant handled through;
- the pushed triggers (event, threshold, a2a, manual via `run_now`) arrive as signals carrying a
  small case reference; they wait in the workflow's state until the loop takes them.

One firing at a time: runs of a task are serialised, so an event and a poll that see the same case
at the same moment run it once. Each firing: its cases (TASK_POLL or TASK_CASES: keys, dedupe, the
no-op receipt) → the durable agent turn over the new cases → COMPLETE_TICK, which marks their keys
processed in the receipt's transaction. A failed run marks nothing: its cases come again.

While the task is paused, time triggers leave `skipped / paused` receipts and pushed cases
`skipped / paused` ones too (not marked processed: a replay or a poll brings them again); a disabled
task refuses them. A manual run bypasses pause (not disable), as a heartbeat's run-now does; a task
without a `manual` trigger refuses it (`refused / no_manual_trigger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.heartbeat import HeartbeatStatusView
    from contract.messages import (
        MAX_CASES_PER_FIRING,
        CompleteTickRequest,
        TaskCases,
        TaskCasesRequest,
        TaskPollRequest,
        TickCompletion,
        TickRef,
    )
    from contract.names import (
        COMPLETE_TICK,
        QUERY_STATUS,
        SIGNAL_A2A,
        SIGNAL_EVENT,
        SIGNAL_RECONFIGURE,
        SIGNAL_RUN_NOW,
        SIGNAL_THRESHOLD,
        TASK_CASES,
        TASK_POLL,
        TASK_SIGNALS,
        TASK_WORKFLOW,
    )
    from contract.task import (
        MAX_CASE_PAYLOAD_CHARS,
        MAX_PENDING_CASES,
        DelegatedCase,
        EventCase,
        ManualRun,
        PendingCase,
        TaskConfig,
        TaskInput,
        TaskState,
        ThresholdCase,
    )
    from contract.vocabulary import Trigger, iso_utc
    from manifest.tasks import HeartbeatTrigger, TimeSchedule
    from schedule import next_fire
    from schedule.fires import cooldown
    from workflows.activity_options import STORE_ACTIVITY
    from workflows.entity import EntityWorkflow, milliseconds
    from workflows.failures import excerpt, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn


@dataclass
class Firing:
    """What one run of the task handles: a time trigger's due time, or pushed cases of one kind."""

    trigger: Trigger
    at: datetime
    cases: list[PendingCase] = field(default_factory=list)
    poll: HeartbeatTrigger | None = None  # the heartbeat trigger whose pre-filter finds the cases


@workflow.defn(name=TASK_WORKFLOW)
class TaskWorkflow(EntityWorkflow):
    KNOWN_SIGNALS = TASK_SIGNALS

    @workflow.init
    def __init__(self, input: TaskInput) -> None:
        self._config: TaskConfig = input.config
        state = input.state
        self._init_entity(input.config.workflow_id, state, input.max_ticks_per_run)
        self._last_ok_at = state.last_ok_at
        self._pending: list[PendingCase] = list(state.pending)
        self._due_schedules: list[TimeSchedule] = []

    @workflow.run
    async def run(self, input: TaskInput) -> None:
        self._publish_search_attributes()
        while True:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    TaskInput(config=self._config, state=self._snapshot(), max_ticks_per_run=self._max_ticks_per_run))
            for firing in await self._wait_for_firings():
                await self._fire(firing)

    # --- messages ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_RUN_NOW)
    def run_now(self, request: ManualRun | None = None) -> None:
        """Run the task now (its manual trigger): bypasses active hours, cooldown and pause; with
        `force`, dedupe too. An optional payload is the case, with its key when given."""
        request = request or ManualRun()
        self._push(PendingCase(source="manual", ref="manual", payload=_small(request.payload), key=request.key,
                               force=request.force, at=workflow.now()))

    @workflow.signal(name=SIGNAL_EVENT)
    def event(self, case: EventCase) -> None:
        if not any(trigger.event == case.event for trigger in self._config.task.triggers_of("event")):
            workflow.logger.warning("%s has no trigger for event %r; ignored", self._entity_id, case.event)
            return
        self._push(PendingCase(source="event", ref=case.event_id, name=case.event, at=workflow.now()))

    @workflow.signal(name=SIGNAL_THRESHOLD)
    def threshold(self, case: ThresholdCase) -> None:
        if not any(trigger.metric == case.metric for trigger in self._config.task.triggers_of("threshold")):
            workflow.logger.warning("%s has no threshold on %r; ignored", self._entity_id, case.metric)
            return
        # To the microsecond: two crossings in one second (down, up, down again) are two cases.
        crossed = case.crossed_at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._push(PendingCase(source="threshold", ref=f"{case.metric}@{crossed}", name=case.metric,
                               payload={"metric": case.metric, "value": case.value, "crossed_at": crossed},
                               at=workflow.now()))

    @workflow.signal(name=SIGNAL_A2A)
    def a2a(self, case: DelegatedCase) -> None:
        if not self._config.task.triggers_of("a2a"):
            workflow.logger.warning("%s has no a2a trigger; delegation %s ignored", self._entity_id, case.delegation_id)
            return
        self._push(PendingCase(source="a2a", ref=case.delegation_id, name=case.from_agent,
                               payload=_small(case.input), key=case.key, at=workflow.now()))

    @workflow.signal(name=SIGNAL_RECONFIGURE)
    def reconfigure(self, config: TaskConfig) -> None:
        """A new spec from the sync client: the next due time is the new time triggers' first after
        the reconfigure (a shorter interval never makes a run overdue at once); pending cases stay."""
        if config.workflow_id != self._config.workflow_id:
            workflow.logger.warning("reconfigure for %s ignored by %s", config.workflow_id, self._entity_id)
            return
        if config.fingerprint != self._config.fingerprint:
            self._config = config
            self._woken = True
            now = workflow.now()
            self._last_due = max(self._last_due, now) if self._last_due else now

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> HeartbeatStatusView:
        config = self._config
        return HeartbeatStatusView(
            id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent, slug=config.task.slug,
            status=self._status, failure_count=self._failure_count, next_run=self._next_run(),
            last_run=iso_utc(self._last_run), last_heartbeat_ok_at=iso_utc(self._last_ok_at),
            ignored_signals=list(self._ignored_signals),
        )

    def _push(self, case: PendingCase) -> None:
        self._pending.append(case)
        if len(self._pending) > MAX_PENDING_CASES:
            dropped = self._pending.pop(0)
            workflow.logger.warning("%s: more than %d cases waiting; dropped %s %s", self._entity_id,
                                    MAX_PENDING_CASES, dropped.source, dropped.ref)

    # --- waiting -------------------------------------------------------------------------------

    async def _wait_for_firings(self) -> list[Firing]:
        """Block until something is due or pushed; the firings to run, in order."""
        while True:
            self._woken = False
            due = self._compute_next_due()
            self._next_due = due
            if due is not None and due <= workflow.now():
                return self._time_firings(due)  # before pushed cases: a flood cannot starve the clock
            if self._pending:
                return [self._take_pushed()]
            self._publish_details()
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending) or self._woken,
                    timeout=None if due is None else due - workflow.now(),
                    timeout_summary=f"next run {iso_utc(due)}" if due else None,
                )
            except TimeoutError:
                assert due is not None
                return self._time_firings(due)

    def _take_pushed(self) -> Firing:
        """The oldest waiting case's kind: a manual run alone (its own payload and force), else up to
        MAX_CASES_PER_FIRING cases of that kind, oldest first."""
        first = self._pending[0]
        if first.source == "manual":
            self._pending.pop(0)
            return Firing(trigger="manual", at=first.at or workflow.now(), cases=[first])
        taken = [case for case in self._pending if case.source == first.source][:MAX_CASES_PER_FIRING]
        for case in taken:
            self._pending.remove(case)
        return Firing(trigger=first.source, at=workflow.now(), cases=taken)

    def _compute_next_due(self) -> datetime | None:
        if self._status == "disabled":
            return None  # only run_now (refused) and enable wake a disabled task
        after = self._last_due or workflow.now()
        dues = [(next_fire(schedule, tenant_id=self._config.tenant, tenant_timezone=self._config.tenant_timezone,
                           after=after), schedule) for schedule in self._config.task.time_schedules()]
        found = [due for due, _ in dues if due is not None]
        if not found:
            return None
        earliest = min(found)
        self._due_schedules = [schedule for due, schedule in dues if due == earliest]
        return earliest

    def _time_firings(self, due: datetime) -> list[Firing]:
        # A schedule and a poll due at the same instant both run, the schedule first.
        return [Firing(trigger="heartbeat", at=due, poll=schedule.trigger)
                if isinstance(schedule.trigger, HeartbeatTrigger)
                else Firing(trigger="schedule", at=due, cases=[PendingCase(
                    source="schedule", ref=iso_utc(due) or "", payload={"due": iso_utc(due)}, at=due)])
                for schedule in sorted(self._due_schedules, key=lambda s: isinstance(s.trigger, HeartbeatTrigger))]

    # --- one run -------------------------------------------------------------------------------

    async def _fire(self, firing: Firing) -> None:
        now = workflow.now()
        self._begin_tick()
        config, task = self._config, self._config.task
        tick = TickRef(heartbeat_id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent,
                       slug=task.slug, tick_id=f"{workflow.info().run_id}/{self._ticks_this_run}", at=firing.at,
                       trigger=firing.trigger)
        brought = len(firing.cases)
        if firing.trigger in ("schedule", "heartbeat"):
            self._last_due = max(firing.at, now)  # handled through now: missed due times are not replayed
            if self._status == "paused":
                await self._receipt(tick, "skipped", reason="paused", cases=brought)
                return
            if self._in_cooldown(firing.at):
                await self._receipt(tick, "skipped", reason="cooldown", cases=brought)
                return
        elif firing.trigger == "manual" and not task.triggers_of("manual"):
            await self._receipt(tick, "refused", reason="no_manual_trigger", cases=brought)
            return
        elif self._status == "disabled":
            await self._receipt(tick, "refused", reason="disabled", cases=brought)
            return
        elif self._status == "paused" and firing.trigger != "manual":
            await self._receipt(tick, "skipped", reason="paused", cases=brought)
            return

        agent = f"agent {config.agent} ({task.model_tier})"
        try:
            if firing.poll is not None:
                poll = firing.poll
                found: TaskCases = await workflow.execute_local_activity(
                    TASK_POLL,
                    TaskPollRequest(tick=tick, skill=poll.skill, tool=poll.tool, params=poll.params,
                                    dedupe_key=task.dedupe.key, ttl_hours=task.dedupe.ttl_hours),
                    result_type=TaskCases, summary=f"poll {_describe_source(poll)}", **STORE_ACTIVITY)
            else:
                found = await workflow.execute_local_activity(
                    TASK_CASES,
                    TaskCasesRequest(tick=tick, cases=firing.cases, dedupe_key=task.dedupe.key,
                                     ttl_hours=task.dedupe.ttl_hours),
                    result_type=TaskCases, summary=f"{firing.trigger}: {brought} case(s)", **STORE_ACTIVITY)
            self._last_run = now
            if found.deferred:  # new cases beyond one run's cap: first in line for the next run
                self._pending[:0] = [firing.cases[position] for position in found.deferred]
            if found.receipt_written:  # nothing new: the no-op run ends here, with its receipt
                self._record_success()
                return
            rows = [{"key": case.key, "case": case.body} for case in found.cases]
            reply = await run_agent_turn(AgentTurn(
                tick=tick, prompt=task.prompt, rows=rows, truncated=found.truncated, model_tier=task.model_tier,
                conversation_mode=task.conversation_mode, purpose="task",
                summary=f"{firing.trigger}: {len(rows)} new case(s) of {found.total} · {agent}",
                case_keys=[case.key for case in found.cases]))
            completion: TickCompletion = await workflow.execute_local_activity(
                COMPLETE_TICK,
                CompleteTickRequest(tick=tick, reply=reply, rows=len(rows), conversation_mode=task.conversation_mode,
                                    duration_ms=milliseconds(workflow.now() - now),
                                    processed=[case.key for case in found.cases], ttl_hours=task.dedupe.ttl_hours,
                                    cases=found.total, duplicates=found.duplicates, forced=found.forced),
                result_type=TickCompletion, summary=f"{'shadow · ' if reply.shadow else ''}{agent} → {excerpt(reply.text)}",
                **STORE_ACTIVITY)
        except FailureError as failure:
            if is_cancellation(failure):
                raise
            await self._record_failure(tick, failure, started=now, cases=brought)
            return
        if completion.outcome == "suppressed":
            self._last_ok_at = workflow.now()
        self._record_success()
        if completion.escalated:
            await self._wake_vision(tick, reply.text)

    def _in_cooldown(self, due: datetime) -> bool:
        spacing = cooldown(self._config.task)
        return bool(spacing and self._last_run and due - self._last_run < spacing)

    def _snapshot(self) -> TaskState:
        return TaskState(status=self._status, failure_count=self._failure_count, last_run=self._last_run,
                         last_ok_at=self._last_ok_at, last_due=self._last_due, pending=list(self._pending),
                         ticks=self._ticks_total)


def _describe_source(poll: HeartbeatTrigger) -> str:
    detail = poll.params.get("record_type") or poll.params.get("kind") or ""
    return f"{poll.skill} {detail}".strip()


def _small(payload: object) -> object:
    """A payload that may enter history: whole when its text is short, else a note saying it was cut."""
    text = repr(payload)
    return payload if len(text) <= MAX_CASE_PAYLOAD_CHARS else {"truncated": True, "chars": len(text)}
