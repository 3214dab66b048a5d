"""HeartbeatWorkflow: one long-lived workflow per installed heartbeat.

Loop: compute the next due time (pure schedule maths) → wait for it or a signal → gates (paused,
cooldown, disabled) → pre-filter (a local activity: the common no-op tick costs one marker) →
agent turn when the pre-filter found rows or the heartbeat is `invoke_always` → receipt.

Due times are absolute instants from `schedule.next_fire`, computed strictly after the instant
the schedule has been handled through (`last_due`), so nothing drifts. After an outage the timer
fires late once: that single catch-up tick runs, `last_due` jumps to "now", and the grid resumes.
No bursts.

Workflow code is deterministic: time is `workflow.now()`; the schedule maths and the pydantic
contracts are pure modules passed through the sandbox (their zoneinfo objects are real ones).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from contract.heartbeat import (
        MAX_CONSECUTIVE_FAILURES,
        HeartbeatConfig,
        HeartbeatInput,
        HeartbeatState,
        HeartbeatStatusView,
    )
    from contract.llm import ChatMessage, LlmResponse
    from contract.messages import (
        ERROR_MAX_STEPS,
        ERROR_TOKEN_CAP,
        MAX_AGENT_STEPS,
        MAX_ERROR_CHARS,
        MAX_TURN_MESSAGE_CHARS,
        NON_RETRYABLE_PREFILTER_ERRORS,
        AgentReply,
        AgentStepRequest,
        AgentTurnRequest,
        CompleteTickRequest,
        PrefilterRequest,
        PrefilterResult,
        ReceiptRequest,
        TickCompletion,
        TickRef,
        ToolCallRequest,
        ToolResult,
        WakeVisionRequest,
    )
    from contract.names import (
        AGENT_STEP,
        AGENT_TURN,
        COMPLETE_TICK,
        HEARTBEAT_WORKFLOW,
        PREFILTER,
        QUERY_STATUS,
        RECORD_RECEIPT,
        SIGNAL_ENABLE,
        SIGNAL_PAUSE,
        SIGNAL_RECONFIGURE,
        SIGNAL_RESUME,
        SIGNAL_RUN_NOW,
        TOOL_CALL,
        WAKE_VISION,
    )
    from contract.search_attributes import SA_FAILURE_COUNT, SA_STATUS
    from contract.vocabulary import Status, Trigger, iso_utc
    from schedule import next_fire

# Fast database work: local activities (recorded as one marker each, no extra workflow task).
STORE_ACTIVITY = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=15),
        non_retryable_error_types=list(NON_RETRYABLE_PREFILTER_ERRORS),
    ),
)
# The agent turn may wait on an LLM: a regular activity with its own, longer budget. It
# heartbeats while it waits, so a crashed worker's call is retried within seconds.
AGENT_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=5,
    ),
)


# Side-effecting tools: retried like the agent, and idempotent per key on the tool's side.
TOOL_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=2),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
)
# Behaviour changes of running workflows go behind a patch (see workflow.patched).
PATCH_DURABLE_TURN = "durable-agent-turn"


@workflow.defn(name=HEARTBEAT_WORKFLOW)
class HeartbeatWorkflow:
    @workflow.init
    def __init__(self, input: HeartbeatInput) -> None:
        self._config: HeartbeatConfig = input.config
        state = input.state
        self._status: Status = state.status
        self._failure_count = state.failure_count
        self._last_run = state.last_run
        self._last_heartbeat_ok_at = state.last_heartbeat_ok_at
        self._last_due = state.last_due
        self._run_now_pending = state.run_now_pending
        self._ticks_total = state.ticks
        self._ticks_this_run = 0
        self._next_due: datetime | None = None
        self._woken = False  # config or status changed: recompute the next due time
        self._max_ticks_per_run = input.max_ticks_per_run
        self._published: tuple[str, int] | None = None

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

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        if self._status == "active":
            self._set_status("paused")

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        if self._status == "paused":
            self._set_status("active")

    @workflow.signal(name=SIGNAL_ENABLE)
    def enable(self) -> None:
        """Re-arm a disabled heartbeat (failure count back to 0)."""
        if self._status == "disabled":
            # The time spent disabled is not owed: resume on the grid, with no catch-up tick.
            self._last_due = workflow.now()
        if self._status == "disabled" or self._failure_count:
            self._failure_count = 0
            self._set_status("active" if self._status == "disabled" else self._status)

    @workflow.signal(name=SIGNAL_RECONFIGURE)
    def reconfigure(self, config: HeartbeatConfig) -> None:
        """A new spec from the sync client; takes effect from the next due time on."""
        if config.workflow_id != self._config.workflow_id:
            workflow.logger.warning("reconfigure for %s ignored by %s", config.workflow_id, self._config.workflow_id)
            return
        if config.fingerprint != self._config.fingerprint:
            self._config = config
            self._woken = True

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
            next_run=iso_utc(self._next_due) if self._status != "disabled" else None,
            last_run=iso_utc(self._last_run),
            last_heartbeat_ok_at=iso_utc(self._last_heartbeat_ok_at),
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
            except asyncio.TimeoutError:
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
        self._ticks_this_run += 1
        self._ticks_total += 1
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
            if workflow.patched(PATCH_DURABLE_TURN):
                reply = await self._agent_turn(tick, found, summary=f"prefilter {source} → {len(found.rows)} rows · {agent}")
            else:  # workflows that started their tick before the durable turn existed
                reply = await workflow.execute_activity(
                    AGENT_TURN,
                    AgentTurnRequest(tick=tick, rows=found.rows, truncated=found.truncated, prompt=spec.prompt,
                                     model_tier=spec.model_tier, conversation_mode=spec.conversation_mode),
                    result_type=AgentReply,
                    summary=f"prefilter {source} → {len(found.rows)} rows · {agent}",
                    **AGENT_ACTIVITY,
                )
            completion: TickCompletion = await workflow.execute_local_activity(
                COMPLETE_TICK,
                CompleteTickRequest(tick=tick, reply=reply, rows=len(found.rows),
                                    conversation_mode=spec.conversation_mode,
                                    duration_ms=_milliseconds(workflow.now() - now)),
                result_type=TickCompletion,
                summary=f"{agent} → {_excerpt(reply.text)}",
                **STORE_ACTIVITY,
            )
        except FailureError as failure:
            # A local activity's failure arrives bare (ApplicationError, TimeoutError), a regular
            # activity's wrapped in ActivityError. Cancellation (uninstall) is not a tick failure.
            if _is_cancellation(failure):
                raise
            await self._record_failure(tick, failure, started=now)
            return
        if completion.outcome == "suppressed":
            self._last_heartbeat_ok_at = workflow.now()
        self._record_success()
        if completion.escalated:
            await self._wake_vision(tick, reply.text)

    async def _agent_turn(self, tick: TickRef, found: PrefilterResult, *, summary: str) -> AgentReply:
        """LLM call → tool calls → LLM call …, each its own activity: a crash mid-turn resumes
        after the last completed call, and never repeats a tool call that completed."""
        spec = self._config.heartbeat
        turn: list[ChatMessage] = []
        tokens_in = tokens_out = 0
        for step in range(MAX_AGENT_STEPS):
            response: LlmResponse = await workflow.execute_activity(
                AGENT_STEP,
                AgentStepRequest(tick=tick, step=step, prompt=spec.prompt, rows=found.rows, truncated=found.truncated,
                                 model_tier=spec.model_tier, conversation_mode=spec.conversation_mode,
                                 turn=[message.model_dump(mode="json") for message in turn]),
                result_type=LlmResponse,
                summary=summary if step == 0 else f"agent {tick.agent} ({spec.model_tier}) step {step + 1}",
                **AGENT_ACTIVITY,
            )
            tokens_in += response.tokens_in
            tokens_out += response.tokens_out
            if response.stop_reason in ("max_tokens", "length"):
                raise ApplicationError(
                    f"the model hit the per-call output cap ({response.model}, step {step + 1})",
                    type=ERROR_TOKEN_CAP, non_retryable=True)
            if not response.tool_calls:
                return AgentReply(text=response.text, provider=response.provider, model=response.model,
                                  tokens_in=tokens_in, tokens_out=tokens_out)
            turn.append(ChatMessage(role="assistant", content=response.text[:MAX_TURN_MESSAGE_CHARS],
                                    tool_calls=response.tool_calls, provider_blocks=response.provider_blocks))
            for index, call in enumerate(response.tool_calls):
                result: ToolResult = await workflow.execute_activity(
                    TOOL_CALL,
                    ToolCallRequest(tick=tick, call_id=call.id, name=call.name, arguments=call.arguments,
                                    idempotency_key=f"{tick.heartbeat_id}/{tick.tick_id}/{step}/{index}"),
                    result_type=ToolResult,
                    summary=f"tool {call.name}",
                    **TOOL_ACTIVITY,
                )
                turn.append(ChatMessage(role="tool", content=result.content, tool_call_id=call.id))
        raise ApplicationError(f"no final reply after {MAX_AGENT_STEPS} LLM calls", type=ERROR_MAX_STEPS,
                               non_retryable=True)

    async def _wake_vision(self, tick: TickRef, text: str) -> None:
        """`<escalate-to-vision/>`: the agent's vision loop runs 30 s later (escalations coalesce)."""
        try:
            await workflow.execute_local_activity(
                WAKE_VISION, WakeVisionRequest(tick=tick, reason=_excerpt(text, 200)),
                summary=f"wake vision of {tick.agent}", **STORE_ACTIVITY)
        except FailureError as failure:
            if _is_cancellation(failure):
                raise
            workflow.logger.warning("vision loop of %s not woken: %s", tick.agent, failure)

    def _in_cooldown(self, due: datetime) -> bool:
        cooldown = self._config.heartbeat.cooldown_seconds
        return bool(cooldown and self._last_run and due - self._last_run < timedelta(seconds=cooldown))

    def _record_success(self) -> None:
        if self._failure_count:
            self._failure_count = 0
            self._publish_search_attributes()

    async def _record_failure(self, tick: TickRef, failure: FailureError, *, started: datetime) -> None:
        self._failure_count += 1
        if self._failure_count >= MAX_CONSECUTIVE_FAILURES and self._status == "active":
            self._status = "disabled"
            workflow.logger.warning("%s disabled after %d consecutive failures", tick.heartbeat_id, self._failure_count)
        self._publish_search_attributes()
        await self._receipt(tick, "failed", reason=_error_type(failure), error=_error_text(failure),
                            duration_ms=_milliseconds(workflow.now() - started))

    async def _receipt(self, tick: TickRef, outcome: str, **fields) -> None:
        try:
            await workflow.execute_local_activity(
                RECORD_RECEIPT,
                ReceiptRequest(tick=tick, outcome=outcome, **fields),
                summary=f"receipt {outcome}" + (f" ({fields['reason']})" if fields.get("reason") else ""),
                **STORE_ACTIVITY,
            )
        except FailureError as failure:
            if _is_cancellation(failure):
                raise
            # The store stayed down past the retry budget. The tick's outcome is already in the
            # workflow's state and history; a missing receipt must not stop the heartbeat.
            workflow.logger.exception("receipt for %s tick %s not written", tick.heartbeat_id, tick.tick_id)

    # --- state, visibility, continue-as-new ----------------------------------------------------

    def _set_status(self, status: Status) -> None:
        self._status = status
        self._woken = True
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        # Only on change: an upsert is a history event, and most ticks change nothing. The
        # workflow keeps current the attributes its starter gave it (the sync client sets all
        # six); a workflow started without them (e.g. on the test server, which cannot register
        # custom attributes) does not add them.
        current = (self._status, self._failure_count)
        if current == self._published:
            return
        attributes = workflow.info().typed_search_attributes
        if attributes.get(SA_STATUS) is None:
            return
        if self._published is None and (attributes.get(SA_STATUS), attributes.get(SA_FAILURE_COUNT)) == current:
            self._published = current  # the starter (or the previous run) already set them
            return
        workflow.upsert_search_attributes([SA_STATUS.value_set(self._status),
                                           SA_FAILURE_COUNT.value_set(self._failure_count)])
        self._published = current

    def _publish_details(self) -> None:
        # Current details are shown by `temporal workflow describe` and the web UI, and cost no
        # history event (unlike a search attribute per tick).
        workflow.set_current_details(
            f"**{self._status}** · next due {iso_utc(self._next_due) or '—'} · last run "
            f"{iso_utc(self._last_run) or '—'} · failures {self._failure_count}/{MAX_CONSECUTIVE_FAILURES}"
        )

    def _should_continue_as_new(self) -> bool:
        return self._ticks_this_run >= self._max_ticks_per_run or workflow.info().is_continue_as_new_suggested()

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


def _excerpt(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _milliseconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


def _root_cause(failure: BaseException) -> BaseException:
    while isinstance(failure, ActivityError) and failure.cause is not None:
        failure = failure.cause
    return failure


def _is_cancellation(failure: BaseException) -> bool:
    return isinstance(_root_cause(failure), CancelledError)


def _error_type(failure: FailureError) -> str:
    cause = _root_cause(failure)
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__


def _error_text(failure: FailureError) -> str:
    return str(_root_cause(failure))[:MAX_ERROR_CHARS]
