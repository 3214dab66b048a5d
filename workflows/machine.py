"""MachineWorkflow: one run of a state-machine workflow (`machine:{tenant}:{app}:{workflow}:{key}`).

The run interprets the definition it was started with (pinned by hash: a re-install changes new
runs only). From its place:

- the first automatic transition (`onEntry`, or a `${ guard }` that holds) fires; its calls run in
  order, each tool call an activity (timeout and retries per transition), groups fanned out at most
  `limit` at a time. A result's `nextPlace` picks among the transition's `to` (one not in `to` is
  an error); without one the run goes to `to[0]`;
- with only manual transitions left the run is `waiting`: the `transition` Update (validated:
  the transition leaves this place, its payload satisfies `payload_schema`) fires one, and a
  `deadline` moves the run to `on_deadline`. An Update and a deadline that race are never both
  applied: the validator refuses once the deadline has moved the run, and an Update accepted first
  is applied instead of the deadline;
- an error goes to `onError`. Without one the run fails for good: if completed calls declared
  `compensate`, those run last-in first-out (status `compensated`); otherwise it stops `failed` at
  its place, and the `retry` Update fires the transition again, skipping the calls that completed.
  A compensation that fails after its retries stops the run `failed`; `retry` resumes compensating.

Expressions are CEL (manifest.expressions): pure functions of the run's state, so they are
evaluated here, and a replay computes the same values. History stays bounded: continue-as-new
every MAX_TRANSITIONS_PER_RUN transitions (or when Temporal suggests it), carrying the state.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    import jsonschema

    from contract.machine import (
        MACHINE_STATE_ERROR,
        MACHINE_TOOL_ERROR,
        MAX_FOREACH_ITEMS,
        MAX_STEPS_KEPT,
        MAX_TRANSITIONS_PER_RUN,
        Checkpoint,
        Compensation,
        MachineCallRequest,
        MachineCallResult,
        MachineInput,
        MachineState,
        MachineView,
        ManualOption,
        Step,
        TransitionRequest,
    )
    from contract.messages import TickRef
    from contract.names import MACHINE_CALL, MACHINE_WORKFLOW, QUERY_MACHINE, UPDATE_RETRY, UPDATE_TRANSITION
    from contract.search_attributes import SA_MACHINE_PLACE, SA_MACHINE_STATUS
    from manifest.expressions import ExpressionError, render, truthy
    from manifest.machines import END, AgentCallSpec, CallSpec, TransitionSpec, load_definition, parse_duration
    from workflows.failures import error_text, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn

COMPENSATION_ATTEMPTS = 5
NEXT_PLACE = "nextPlace"


class TransitionFailed(Exception):
    """A transition's own failure: a call's error, an expression, a `nextPlace` outside `to`."""


@workflow.defn(name=MACHINE_WORKFLOW)
class MachineWorkflow:
    @workflow.init
    def __init__(self, input: MachineInput) -> None:
        self._input = input
        self._spec = load_definition(input.definition)
        self._state: MachineState = input.state
        self._pending: TransitionRequest | None = None
        self._retry_requested = False
        self._fired_this_run = 0
        self._published: tuple[str, str] | None = None

    @workflow.run
    async def run(self, input: MachineInput) -> MachineView:
        state = self._state
        if state.started_at is None:
            state.started_at = workflow.now()
        try:
            while True:
                if state.place == END and not state.compensating:
                    self._set_status("completed")
                    return self.view()
                if state.status == "compensated":
                    return self.view()
                if state.status == "failed":
                    await self._resume_after_retry()
                    continue
                if self._fired_this_run >= MAX_TRANSITIONS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(input.model_copy(update={"state": state}))
                chosen = await self._next_transition()
                if chosen is not None:
                    await self._fire(*chosen)
        except asyncio.CancelledError:
            self._set_status("cancelled")
            raise

    # --- messages ------------------------------------------------------------------------------

    @workflow.query(name=QUERY_MACHINE)
    def view(self) -> MachineView:
        state, input = self._state, self._input
        checkpoint = state.checkpoint
        return MachineView(
            id=input.workflow_id, tenant=input.tenant, app=input.app, workflow=input.workflow, key=input.key,
            definition_hash=input.definition_hash, place=state.place, status=state.status,
            variables=state.variables, context=self._context(), error=state.error, steps=state.steps,
            steps_total=state.steps_total,
            waiting_for=self._manual_options() if state.status == "waiting" else [],
            failed_transition=checkpoint.transition if checkpoint and state.status == "failed" else None,
            compensations_pending=[f"{c.transition}: {c.tool} (undoes {c.call})" for c in reversed(state.compensations)]
            if state.compensating else [],
            started_at=state.started_at)

    @workflow.update(name=UPDATE_TRANSITION)
    async def transition(self, request: TransitionRequest) -> MachineView:
        """Fire a manual transition of the current place; the answer is the run after it."""
        if self._pending is not None or self._state.status != "waiting":
            # Accepted, but a deadline or another transition moved the run first: refused, not applied.
            raise ApplicationError(f"the run moved on before {request.transition!r} could fire (it is now"
                                   f" {self._state.status} at {self._state.place})", type=MACHINE_STATE_ERROR)
        fired = self._state.firings
        self._pending = request
        await workflow.wait_condition(lambda: self._state.firings > fired and self._pending is None)
        return self.view()

    @transition.validator
    def _check_transition(self, request: TransitionRequest) -> None:
        # Runs before anything is recorded: a refused Update leaves no trace in the run's history.
        state = self._state
        if state.status != "waiting" or self._pending is not None:
            raise ApplicationError(f"the run is {state.status} at {state.place!r}, not waiting for a manual"
                                   " transition", type=MACHINE_STATE_ERROR)
        manual = {t.name: t for t in self._leaving(state.place) if t.manual}
        found = manual.get(request.transition)
        if found is None:
            raise ValueError(f"no manual transition {request.transition!r} leaves {state.place!r}"
                             f" (waiting for: {', '.join(manual) or 'none'})")
        if found.payload_schema is not None:
            errors = sorted(jsonschema.Draft202012Validator(found.payload_schema).iter_errors(request.payload),
                            key=lambda error: list(error.absolute_path))
            if errors:
                first = errors[0]
                where = "/".join(str(part) for part in first.absolute_path) or "(payload)"
                raise ValueError(f"payload refused by {request.transition}'s payload_schema at {where}:"
                                 f" {first.message}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))

    @workflow.update(name=UPDATE_RETRY)
    async def retry(self) -> MachineView:
        """Resume a failed run: its failed transition again (completed calls are not repeated), or
        the compensations that were left to run."""
        fired = self._state.firings
        self._retry_requested = True
        await workflow.wait_condition(lambda: not self._retry_requested and self._state.firings > fired)
        return self.view()

    @retry.validator
    def _check_retry(self) -> None:
        if self._state.status != "failed" or self._retry_requested:
            raise ApplicationError(f"only a failed run can be retried (this one is {self._state.status})",
                                   type=MACHINE_STATE_ERROR)

    # --- choosing what fires -------------------------------------------------------------------

    def _leaving(self, place: str) -> list[TransitionSpec]:
        return [t for t in self._spec.transitions if place in t.sources]

    async def _next_transition(self) -> tuple[TransitionSpec, Any] | None:
        """The transition to fire next and its payload; None when the run moved (a deadline) or failed."""
        state = self._state
        leaving = self._leaving(state.place)
        for transition in leaving:
            if transition.manual:
                continue
            try:
                if transition.guard is None or truthy(transition.guard, self._scope(None)):
                    return transition, None
            except ExpressionError as exc:
                self._fail_here(transition, f"{transition.name}.when: {exc}")
                return None
        if not any(t.manual for t in leaving):
            self._fail_here(None, f"no transition can leave {state.place!r}: every guard is false")
            return None
        if state.waiting_since is None:
            state.waiting_since = workflow.now()
        self._set_status("waiting")
        deadline = self._deadline()
        try:
            if deadline is not None and deadline[0] <= workflow.now():
                raise TimeoutError  # passed while the run was elsewhere (a continue-as-new, a slow worker)
            await workflow.wait_condition(
                lambda: self._pending is not None,
                timeout=None if deadline is None else deadline[0] - workflow.now(),
                timeout_summary=f"{deadline[1].name} deadline → {deadline[1].on_deadline}" if deadline else None)
        except TimeoutError:
            if self._pending is None and deadline is not None:  # no Update accepted first: the deadline moves the run
                self._set_status("running")
                transition = deadline[1]
                self._arrive(transition, state.place, transition.on_deadline or END, outcome="deadline")
                return None
        request = self._pending
        assert request is not None
        chosen = next(t for t in leaving if t.manual and t.name == request.transition)
        return chosen, request.payload

    def _deadline(self) -> tuple[datetime, TransitionSpec] | None:
        since = self._state.waiting_since
        timed = [(since + parse_duration(t.deadline), t) for t in self._leaving(self._state.place)
                 if t.manual and t.deadline and since is not None]
        return min(timed, key=lambda pair: pair[0]) if timed else None

    def _manual_options(self) -> list[ManualOption]:
        since = self._state.waiting_since
        return [ManualOption(transition=t.name, targets=t.targets, payload_schema=t.payload_schema,
                             deadline_at=since + parse_duration(t.deadline) if t.deadline and since else None,
                             on_deadline=t.on_deadline)
                for t in self._leaving(self._state.place) if t.manual]

    # --- firing --------------------------------------------------------------------------------

    async def _fire(self, transition: TransitionSpec, payload: Any, checkpoint: Checkpoint | None = None) -> None:
        state = self._state
        source = state.place
        state.firings += 1  # a retry is a firing too (its calls reuse the failed firing's keys)
        if checkpoint is None:
            checkpoint = Checkpoint(transition=transition.name, source=source, payload=payload, firing=state.firings)
        self._fired_this_run += 1
        self._set_status("running")
        scope = self._scope(payload)
        picked: str | None = None
        try:
            for index, call in enumerate(transition.call):
                result = await self._run_call(transition, call, str(index), scope, checkpoint, source)
                if call.as_:
                    scope[call.as_] = result
                    state.variables[call.as_] = result
                if isinstance(result, dict) and isinstance(result.get("nextPlace"), str):
                    picked = result["nextPlace"]
            if picked is not None and picked not in transition.targets:
                raise TransitionFailed(f"nextPlace {picked!r} is not among {transition.name}'s to:"
                                       f" {', '.join(transition.targets)}")
        except (TransitionFailed, ExpressionError, FailureError) as failure:
            if isinstance(failure, FailureError) and is_cancellation(failure):
                raise
            message = error_text(failure) if isinstance(failure, FailureError) else str(failure)
            await self._failed(transition, source, checkpoint, message)
            return
        self._pending = None
        state.checkpoint = None
        state.error = None
        self._arrive(transition, source, picked or transition.targets[0], manual=transition.manual)

    async def _failed(self, transition: TransitionSpec, source: str, checkpoint: Checkpoint, message: str) -> None:
        state = self._state
        self._pending = None
        state.error = {"transition": transition.name, "place": source, "message": message}
        if transition.on_error:
            state.checkpoint = None
            self._arrive(transition, source, transition.on_error, outcome="error", error=message,
                         manual=transition.manual)
            return
        state.checkpoint = checkpoint
        self._record(Step(transition=transition.name, source=source, outcome="error", at=workflow.now(),
                          error=message, manual=transition.manual))
        if state.compensations:
            state.compensating = True
            await self._compensate()
        else:
            self._set_status("failed")

    def _arrive(self, transition: TransitionSpec, source: str, target: str, *, outcome: str = "ok",
                error: str | None = None, manual: bool = False) -> None:
        state = self._state
        state.place = target
        state.waiting_since = None
        self._record(Step(transition=transition.name, source=source, target=target, outcome=outcome,  # type: ignore[arg-type]
                          at=workflow.now(), error=error, manual=manual))
        self._set_status("running" if target != END else "completed")

    def _fail_here(self, transition: TransitionSpec | None, message: str) -> None:
        state = self._state
        state.error = {"transition": transition.name if transition else None, "place": state.place,
                       "message": message}
        state.checkpoint = None
        self._set_status("failed")

    def _record(self, step: Step) -> None:
        state = self._state
        state.steps = [*state.steps, step][-MAX_STEPS_KEPT:]
        state.steps_total += 1

    async def _resume_after_retry(self) -> None:
        state = self._state
        await workflow.wait_condition(lambda: self._retry_requested)
        if state.compensating:
            state.firings += 1
            self._set_status("running")
            await self._compensate()
        elif state.checkpoint is not None:
            checkpoint = state.checkpoint
            transition = next(t for t in self._spec.transitions if t.name == checkpoint.transition)
            state.place = checkpoint.source
            await self._fire(transition, checkpoint.payload, checkpoint)
        else:  # failed choosing a transition (a guard): choose again
            state.firings += 1
            state.error = None
            self._set_status("running")
        self._retry_requested = False

    # --- calls ---------------------------------------------------------------------------------

    async def _run_call(self, transition: TransitionSpec, call: CallSpec, path: str, scope: dict[str, Any],
                        checkpoint: Checkpoint, source: str) -> Any:
        """One entry of `call:`; a completed one (in the checkpoint) is not run again."""
        if path in checkpoint.done:
            return checkpoint.done[path]
        if call.parallel is not None:
            result = await self._group(transition, [(inner, scope) for inner in call.parallel], call, path,
                                       checkpoint, source)
        elif call.foreach is not None:
            items = render(call.foreach, scope)
            if not isinstance(items, list):
                raise TransitionFailed(f"foreach {call.foreach.strip()} must give a list (got {type(items).__name__})")
            if len(items) > MAX_FOREACH_ITEMS:
                raise TransitionFailed(f"foreach over {len(items)} items: at most {MAX_FOREACH_ITEMS}")
            single = call.model_copy(update={"foreach": None, "limit": None, "settle": None})
            result = await self._group(transition, [(single, {**scope, call.item: item}) for item in items], call,
                                       path, checkpoint, source)
        else:
            result = await self._single(transition, call, path, scope, checkpoint, source)
        checkpoint.done[path] = result
        return result

    async def _group(self, transition: TransitionSpec, calls: list[tuple[CallSpec, dict[str, Any]]], group: CallSpec,
                     path: str, checkpoint: Checkpoint, source: str) -> list[Any]:
        """Fan out at most `limit` at once; fan in to the results in order. `settle: all` fails on
        the first failure (cancelling the rest); `settled` keeps each outcome as {ok, result|error}."""
        limit = asyncio.Semaphore(group.fan_out_limit)
        results: list[Any] = [None] * len(calls)

        async def one(index: int, call: CallSpec, scope: dict[str, Any]) -> None:
            async with limit:
                try:
                    value = await self._single(transition, call, f"{path}.{index}", scope, checkpoint, source)
                except (TransitionFailed, ExpressionError, FailureError) as failure:
                    if not group.settles or (isinstance(failure, FailureError) and is_cancellation(failure)):
                        raise
                    text = error_text(failure) if isinstance(failure, FailureError) else str(failure)
                    results[index] = {"ok": False, "error": text}
                    return
                results[index] = {"ok": True, "result": value} if group.settles else value

        tasks = [asyncio.create_task(one(index, call, scope)) for index, (call, scope) in enumerate(calls)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results

    async def _single(self, transition: TransitionSpec, call: CallSpec, path: str, scope: dict[str, Any],
                      checkpoint: Checkpoint, source: str) -> Any:
        if path in checkpoint.done:
            return checkpoint.done[path]
        input = self._input
        key = f"{input.workflow_id}/{checkpoint.firing}/{path}"
        targets = " | ".join(transition.targets)
        if call.agent is not None:
            result = await self._agent_step(transition, call.agent, key, scope, f"{transition.name}: {source} →"
                                                                                 f" {targets} · agent {call.agent.id}")
            checkpoint.done[path] = result
            return result
        assert call.tool is not None
        arguments = render(call.arguments, scope)
        result: MachineCallResult = await workflow.execute_activity(
            MACHINE_CALL,
            self._call_request(call.tool, arguments, key),
            result_type=MachineCallResult,
            summary=f"{transition.name}: {source} → {targets} · {call.tool}",
            **_call_options(transition),
        )
        checkpoint.done[path] = result.result
        if call.compensate is not None:
            undo_scope = {**scope, **({call.as_: result.result} if call.as_ else {}), "result": result.result}
            self._state.compensations.append(Compensation(
                transition=transition.name, call=call.tool, tool=call.compensate.tool,
                arguments=render(call.compensate.arguments, undo_scope), key=f"{key}/undo"))
        return result.result

    async def _agent_step(self, transition: TransitionSpec, agent: AgentCallSpec, key: str, scope: dict[str, Any],
                          summary: str) -> dict[str, Any]:
        """An agent turn as a call (a durable turn: each LLM and tool call an activity, budgets and the
        agent's shadow_mode apply). With several targets the agent may end its reply with
        `nextPlace: X`; only a declared target is taken (another is the transition's error)."""
        prompt = render(agent.prompt, scope)
        if not isinstance(prompt, str):
            prompt = json.dumps(prompt, ensure_ascii=False)
        targets = transition.targets
        if len(targets) > 1:
            prompt += (f"\n\nEnd your reply with one line `{NEXT_PLACE}: PLACE`, where PLACE is exactly one of:"
                       f" {', '.join(targets)}.")
        input = self._input
        tick = TickRef(heartbeat_id=input.workflow_id, tenant=input.tenant, app=input.app, agent=agent.id,
                       slug=input.workflow, tick_id=key.removeprefix(f"{input.workflow_id}/"), at=workflow.now(),
                       trigger="machine")
        reply = await run_agent_turn(AgentTurn(tick=tick, prompt=prompt, model_tier=agent.model_tier,
                                               conversation_mode="isolated", purpose="machine", turn_id=key,
                                               summary=summary, label=f"agent {agent.id} ({agent.model_tier})"))
        result: dict[str, Any] = {"text": reply.text, "provider": reply.provider, "model": reply.model,
                                  "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out}
        if len(targets) > 1:
            chosen = _chosen_place(reply.text)
            if chosen is not None:
                result["nextPlace"] = chosen
        return result

    def _call_request(self, tool: str, arguments: dict[str, Any], key: str) -> MachineCallRequest:
        input = self._input
        return MachineCallRequest(tenant=input.tenant, app=input.app, workflow=input.workflow,
                                  workflow_id=input.workflow_id, tool=tool, arguments=arguments, idempotency_key=key,
                                  documents=input.documents)

    async def _compensate(self) -> None:
        """Run the pending compensations, last first; each retried, none skipped."""
        state = self._state
        self._set_status("running")
        while state.compensations:
            undo = state.compensations[-1]
            try:
                await workflow.execute_activity(
                    MACHINE_CALL,
                    self._call_request(undo.tool, undo.arguments, undo.key),
                    result_type=MachineCallResult,
                    summary=f"compensate {undo.transition}: {undo.tool} undoes {undo.call}",
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(minutes=1),
                                             maximum_attempts=COMPENSATION_ATTEMPTS),
                )
            except FailureError as failure:
                if is_cancellation(failure):
                    raise
                state.error = {"transition": undo.transition, "place": state.place,
                               "message": f"compensation {undo.tool} (undoing {undo.call}) failed:"
                                          f" {error_text(failure)}"}
                self._set_status("failed")
                return
            state.compensations.pop()
            self._record(Step(transition=undo.transition, source=state.place, target=state.place,
                              outcome="compensated", at=workflow.now(), error=None))
        state.compensating = False
        self._set_status("compensated")

    # --- scope and visibility ------------------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        return {"variables": self._state.context_variables, "custom": self._state.context_custom}

    def _scope(self, payload: Any) -> dict[str, Any]:
        state = self._state
        return {**state.variables, "context": self._context(), "options": self._spec.options,
                "transition": {"payload": payload}, "error": state.error or {}}

    def _set_status(self, status: str) -> None:
        state = self._state
        state.status = status  # type: ignore[assignment]
        workflow.set_current_details(f"{state.place} · {status}")
        current = (status, state.place)
        if current == self._published:
            return
        self._published = current
        if SA_MACHINE_STATUS in workflow.info().typed_search_attributes:
            workflow.upsert_search_attributes([SA_MACHINE_STATUS.value_set(status),
                                               SA_MACHINE_PLACE.value_set(state.place)])


def _chosen_place(text: str) -> str | None:
    """The place a reply's last `nextPlace: X` line names (backticks and a trailing dot ignored)."""
    for line in reversed(text.strip().splitlines()):
        name, sep, value = line.strip().strip("`*").partition(":")
        if sep and name.strip().lower() == NEXT_PLACE.lower():
            return value.strip().strip("`*. ") or None
    return None


def _call_options(transition: TransitionSpec) -> dict[str, Any]:
    retry = transition.retry
    policy = RetryPolicy(
        initial_interval=parse_duration(retry.initial_interval) if retry else timedelta(seconds=1),
        backoff_coefficient=float(retry.backoff) if retry else 2.0,
        maximum_interval=parse_duration(retry.max_interval) if retry else timedelta(minutes=1),
        maximum_attempts=retry.max_attempts if retry else 3,
        non_retryable_error_types=[MACHINE_TOOL_ERROR],
    )
    return {"start_to_close_timeout": transition.call_timeout, "retry_policy": policy}


__all__ = ["MachineWorkflow"]
