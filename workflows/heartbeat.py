"""HeartbeatWorkflow: one long-lived workflow per installed heartbeat.

Loop: compute the next due time (pure schedule maths) → wait for it or a signal → gates (paused,
cooldown, disabled) → pre-filter (a local activity: the common no-op tick costs one marker) →
agent turn when the pre-filter found rows or the heartbeat is `invoke_always` → receipt.

Due times are absolute instants from `schedule.next_fire`, computed strictly after the instant
the schedule has been handled through (`last_due`), so nothing drifts. After an outage the timer
fires late once: that single catch-up tick runs, `last_due` jumps to "now", and the grid resumes.
No bursts. A reconfigure takes effect from the first due time of the new schedule after the
reconfigure itself: shortening an interval never makes a tick overdue at once.

Workflow code is deterministic: time is `workflow.now()`; the schedule maths and the pydantic
contracts are pure modules passed through the sandbox (their zoneinfo objects are real ones).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.heartbeat import (
        HeartbeatConfig,
        HeartbeatInput,
        HeartbeatState,
        HeartbeatStatusView,
    )
    from contract.messages import (
        AgentReply,
        AgentTurnRequest,
        CompleteTickRequest,
        PrefilterRequest,
        PrefilterResult,
        TickCompletion,
        TickRef,
    )
    from contract.names import (
        AGENT_TURN,
        COMPLETE_TICK,
        HEARTBEAT_SIGNALS,
        HEARTBEAT_WORKFLOW,
        PREFILTER,
        QUERY_STATUS,
        SIGNAL_RECONFIGURE,
        SIGNAL_RUN_NOW,
    )
    from contract.vocabulary import Trigger, iso_utc
    from schedule import next_fire
    from schedule.fires import cooldown
    from workflows.activity_options import AGENT_ACTIVITY, STORE_ACTIVITY
    from workflows.entity import EntityWorkflow, milliseconds
    from workflows.failures import excerpt, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn

# Behaviour changes of running workflows go behind a patch (see workflow.patched).
PATCH_DURABLE_TURN = "durable-agent-turn"
PATCH_RECONFIGURE_FROM_NOW = "reconfigure-from-now"

@workflow.defn(name=HEARTBEAT_WORKFLOW)
class HeartbeatWorkflow(EntityWorkflow):
    KNOWN_SIGNALS = HEARTBEAT_SIGNALS

    @workflow.init
    def __init__(self, input: HeartbeatInput) -> None:
        self._config: HeartbeatConfig = input.config
        state = input.state
        self._init_entity(input.config.workflow_id, state, input.max_ticks_per_run)
        self._last_heartbeat_ok_at = state.last_heartbeat_ok_at
        self._run_now_pending = state.run_now_pending

    @workflow.run
    async def run(self, input: HeartbeatInput) -> None:
        self._publish_search_attributes()
        while True:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    HeartbeatInput(config=self._config, state=self._snapshot(), max_ticks_per_run=self._max_ticks_per_run)
                )
            trigger, at = await self._wait_for_tick()
            await self._tick(trigger, at)

    # --- messages ------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_RUN_NOW)
    def run_now(self) -> None:
        """Run one tick now, bypassing active hours and cooldown; pending requests coalesce."""
        self._run_now_pending = True

    @workflow.signal(name=SIGNAL_RECONFIGURE)
    def reconfigure(self, config: HeartbeatConfig) -> None:
        """A new spec from the sync client; takes effect from the next due time on.

        The next due time is the new schedule's first one strictly after both the last handled
        due time and the reconfigure itself: a due time of the new schedule that lies between the
        last tick and now is not owed (a 60 → 10 minute change 50 minutes after a tick waits for
        the next 10-minute grid point instead of ticking at once).
        """
        if config.workflow_id != self._config.workflow_id:
            workflow.logger.warning("reconfigure for %s ignored by %s", config.workflow_id, self._config.workflow_id)
            return
        if config.fingerprint != self._config.fingerprint:
            self._config = config
            self._woken = True
            if workflow.patched(PATCH_RECONFIGURE_FROM_NOW):
                now = workflow.now()
                self._last_due = max(self._last_due, now) if self._last_due else now

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> HeartbeatStatusView:
        config = self._config
        return HeartbeatStatusView(
            id=config.workflow_id,
            tenant=config.tenant,
            app=config.app,
            agent=config.agent,
            slug=config.heartbeat.slug,
            status=self._status,
            failure_count=self._failure_count,
            next_run=self._next_run(),
            last_run=iso_utc(self._last_run),
            last_heartbeat_ok_at=iso_utc(self._last_heartbeat_ok_at),
            ignored_signals=list(self._ignored_signals),
        )

    # --- waiting -------------------------------------------------------------------------------

    async def _wait_for_tick(self) -> tuple[Trigger, datetime]:
        """Block until a tick is due (or asked for); return its trigger and time."""
        while True:
            self._woken = False
            if self._run_now_pending:
                self._run_now_pending = False
                return "run_now", workflow.now()
            due = self._compute_next_due()
            self._next_due = due
            self._publish_details()
            if due is not None and due <= workflow.now():
                return "schedule", due  # overdue: a late timer, or a tick that ran past the next due time
            try:
                await workflow.wait_condition(
                    lambda: self._run_now_pending or self._woken,
                    timeout=None if due is None else due - workflow.now(),
                    timeout_summary=f"next tick {iso_utc(due)}" if due else None,
                )
            except TimeoutError:
                return "schedule", due  # type: ignore[return-value]

    def _compute_next_due(self) -> datetime | None:
        if self._status == "disabled":
            return None  # only run_now (refused) and enable wake a disabled heartbeat
        # Cooldown is not applied here: a due time inside the cooldown is woken and leaves a
        # `skipped / cooldown` receipt, so an operator sees why it did not run.
        return next_fire(
            self._config.heartbeat,
            tenant_id=self._config.tenant,
            tenant_timezone=self._config.tenant_timezone,
            after=self._last_due or workflow.now(),
        )

    # --- one tick ------------------------------------------------------------------------------

    async def _tick(self, trigger: Trigger, at: datetime) -> None:
        now = workflow.now()
        self._begin_tick()
        config, spec = self._config, self._config.heartbeat
        tick = TickRef(
            heartbeat_id=config.workflow_id,
            tenant=config.tenant,
            app=config.app,
            agent=config.agent,
            slug=spec.slug,
            tick_id=f"{workflow.info().run_id}/{self._ticks_this_run}",
            at=at,
            trigger=trigger,
        )
        if trigger == "schedule":
            # Handled through now: after an outage the missed due times are not replayed.
            self._last_due = max(at, now)
            if self._status == "paused":
                await self._receipt(tick, "skipped", reason="paused")
                return
            if self._in_cooldown(at):
                await self._receipt(tick, "skipped", reason="cooldown")
                return
        elif self._status == "disabled":
            await self._receipt(tick, "refused", reason="disabled")
            return

        source = _describe_source(spec.skill, spec.params)
        try:
            found: PrefilterResult = await workflow.execute_local_activity(
                PREFILTER,
                PrefilterRequest(tick=tick, skill=spec.skill, tool=spec.tool, params=spec.params,
                                 invoke_always=spec.invoke_always),
                result_type=PrefilterResult,
                summary=f"prefilter {source}",
                **STORE_ACTIVITY,
            )
            self._last_run = now
            if found.receipt_written:  # nothing found, not invoke_always: the common no-op tick
                self._record_success()
                return
            agent = f"agent {config.agent} ({spec.model_tier})"
            rows = f"{len(found.rows)} row" + ("s" if len(found.rows) != 1 else "")
            summary = f"prefilter {source} → {rows} · {agent}"
            if workflow.patched(PATCH_DURABLE_TURN):
                reply = await run_agent_turn(AgentTurn(
                    tick=tick, prompt=spec.prompt, rows=found.rows, truncated=found.truncated,
                    model_tier=spec.model_tier, conversation_mode=spec.conversation_mode, summary=summary))
            else:  # workflows that started their tick before the durable turn existed
                reply = await workflow.execute_activity(
                    AGENT_TURN,
                    AgentTurnRequest(tick=tick, rows=found.rows, truncated=found.truncated, prompt=spec.prompt,
                                     model_tier=spec.model_tier, conversation_mode=spec.conversation_mode),
                    result_type=AgentReply,
                    summary=summary,
                    **AGENT_ACTIVITY,
                )
            completion: TickCompletion = await workflow.execute_local_activity(
                COMPLETE_TICK,
                CompleteTickRequest(tick=tick, reply=reply, rows=len(found.rows),
                                    conversation_mode=spec.conversation_mode,
                                    duration_ms=milliseconds(workflow.now() - now)),
                result_type=TickCompletion,
                summary=f"{'shadow · ' if reply.shadow else ''}{agent} → {excerpt(reply.text)}",
                **STORE_ACTIVITY,
            )
        except FailureError as failure:
            # Cancellation (uninstall) is not a tick failure.
            if is_cancellation(failure):
                raise
            await self._record_failure(tick, failure, started=now)
            return
        if completion.outcome == "suppressed":
            self._last_heartbeat_ok_at = workflow.now()
        self._record_success()
        if completion.escalated:
            await self._wake_vision(tick, reply.text)

    def _in_cooldown(self, due: datetime) -> bool:
        spacing = cooldown(self._config.heartbeat)  # clamped: any value that reaches here is representable
        return bool(spacing and self._last_run and due - self._last_run < spacing)

    def _snapshot(self) -> HeartbeatState:
        return HeartbeatState(
            status=self._status,
            failure_count=self._failure_count,
            last_run=self._last_run,
            last_heartbeat_ok_at=self._last_heartbeat_ok_at,
            last_due=self._last_due,
            run_now_pending=self._run_now_pending,
            ticks=self._ticks_total,
        )


def _describe_source(skill: str, params: dict) -> str:
    detail = params.get("record_type") or params.get("kind") or ""
    return f"{skill} {detail}".strip()
