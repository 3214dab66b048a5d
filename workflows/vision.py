"""VisionWorkflow: one long-lived workflow per agent, the deeper loop a heartbeat escalates to.

A heartbeat reply containing `<escalate-to-vision/>` signals-with-start this workflow (ID
`vision:{tenant}:{app}:{agent}`). Thirty seconds after the first escalation (later ones in that
window coalesce into the same pass) it runs a multi-phase pass on the premium tier, assess →
plan → act. Each phase is one durable agent turn (the same turn heartbeats run: the agent's tools
are offered and the calls it asks for run as activities) that sees the previous phases' output;
the resulting plan is written to the agent's memory (kind `vision_plan`). A pass that fails (a
provider down past its retries, a turn over its limits) is logged and the loop waits for the next
escalation: a failed pass never ends the loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.llm import LlmResponse
    from contract.messages import AgentStepRequest, TickRef
    from contract.names import (
        AGENT_STEP,
        QUERY_STATUS,
        RECORD_VISION_PLAN,
        SIGNAL_ESCALATE,
        VISION_WORKFLOW,
        vision_workflow_id,
    )
    from contract.vision import VisionInput, VisionPlan, VisionStatusView
    from contract.vocabulary import iso_utc
    from workflows.activity_options import AGENT_ACTIVITY, STORE_ACTIVITY
    from workflows.failures import error_text, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn

# Behaviour changes of running workflows go behind a patch (see workflow.patched).
PATCH_VISION_TURNS = "vision-phases-are-turns"

ESCALATION_DELAY = timedelta(seconds=30)
MAX_PASSES_PER_RUN = 50
MAX_REASONS = 10

PHASES = {
    "assess": "ASSESS. Heartbeat ticks escalated to you for deeper thought. Reasons:\n{reasons}\n"
              "Assess the situation: what changed, what is at stake, what is unknown.",
    "plan": "PLAN. Given your assessment:\n{assess}\nWrite a short, concrete plan (numbered steps, owners among "
            "your team, dates).",
    "act": "ACT. Given the plan:\n{plan}\nState the first actions to take now and what the routine heartbeats "
           "should watch for until the next review.",
}


@workflow.defn(name=VISION_WORKFLOW)
class VisionWorkflow:
    @workflow.init
    def __init__(self, input: VisionInput) -> None:
        self._input = input
        self._reasons: list[str] = list(input.pending)
        self._wake_at: datetime | None = None
        self._passes = input.passes
        self._passes_this_run = 0

    @workflow.signal(name=SIGNAL_ESCALATE)
    def escalate(self, reason: str) -> None:
        self._reasons = [*self._reasons, reason[:500]][-MAX_REASONS:]
        if self._wake_at is None:  # repeated escalations coalesce into the pending pass
            self._wake_at = workflow.now() + ESCALATION_DELAY

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> VisionStatusView:
        return VisionStatusView(passes=self._passes, pending=len(self._reasons), next_pass=iso_utc(self._wake_at))

    @workflow.run
    async def run(self, input: VisionInput) -> None:
        if self._reasons and self._wake_at is None:
            self._wake_at = workflow.now() + ESCALATION_DELAY
        while True:
            if self._passes_this_run >= MAX_PASSES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input.model_copy(update={"passes": self._passes, "pending": self._reasons}))
            await workflow.wait_condition(lambda: self._wake_at is not None)
            assert self._wake_at is not None
            delay = self._wake_at - workflow.now()
            if delay > timedelta(0):
                await workflow.sleep(delay, summary="vision pass after escalation")
            reasons, self._reasons, self._wake_at = self._reasons, [], None
            await self._pass(input, reasons)

    async def _pass(self, input: VisionInput, reasons: list[str]) -> None:
        self._passes += 1
        self._passes_this_run += 1
        vision_id = vision_workflow_id(input.tenant, input.app, input.agent)
        tick = TickRef(heartbeat_id=vision_id, tenant=input.tenant, app=input.app, agent=input.agent, slug="vision",
                       tick_id=f"{workflow.info().run_id}/{self._passes_this_run}", at=workflow.now(),
                       trigger="escalation")
        if not workflow.patched(PATCH_VISION_TURNS):
            await self._pass_without_tools(input, tick, reasons)  # passes that began before the phases were turns
            return
        outputs: dict[str, str] = {}
        provider = model = ""
        try:
            for phase, template in PHASES.items():
                reply = await run_agent_turn(AgentTurn(
                    tick=tick, prompt=_phase_prompt(template, reasons, outputs), model_tier="premium",
                    conversation_mode="isolated", purpose="vision", turn_id=f"{vision_id}/{tick.tick_id}/{phase}",
                    label=f"vision {input.agent} {phase} (premium)"))
                outputs[phase] = reply.text
                provider, model = reply.provider, reply.model
            await self._record_plan(input, tick, outputs, provider, model)
        except FailureError as failure:
            if is_cancellation(failure):
                raise
            workflow.logger.warning("vision pass %s of %s failed: %s", tick.tick_id, vision_id, error_text(failure))

    async def _pass_without_tools(self, input: VisionInput, tick: TickRef, reasons: list[str]) -> None:
        outputs: dict[str, str] = {}
        provider = model = ""
        for step, (phase, template) in enumerate(PHASES.items()):
            response: LlmResponse = await workflow.execute_activity(
                AGENT_STEP,
                AgentStepRequest(tick=tick, step=step, prompt=_phase_prompt(template, reasons, outputs), rows=[],
                                 truncated=False, model_tier="premium", conversation_mode="isolated", turn=[]),
                result_type=LlmResponse,
                summary=f"vision {input.agent} {phase} (premium)",
                **AGENT_ACTIVITY,
            )
            outputs[phase] = response.text
            provider, model = response.provider, response.model
        await self._record_plan(input, tick, outputs, provider, model)

    async def _record_plan(self, input: VisionInput, tick: TickRef, outputs: dict[str, str], provider: str,
                           model: str) -> None:
        await workflow.execute_local_activity(
            RECORD_VISION_PLAN,
            VisionPlan(tick=tick, assess=outputs["assess"], plan=outputs["plan"], act=outputs["act"],
                       provider=provider, model=model),
            summary=f"vision {input.agent}: plan written to memory",
            **STORE_ACTIVITY,
        )


def _phase_prompt(template: str, reasons: list[str], outputs: dict[str, str]) -> str:
    return template.format(reasons="\n".join(f"- {r}" for r in reasons) or "- (none given)", **outputs)
