"""The heartbeat activities, bound to one store and one skill registry. worker.py registers `all()`.

    activities = HeartbeatActivities(store, default_registry())
    Worker(client, task_queue=TASK_QUEUE, workflows=[...], activities=activities.all())

The logic lives in activities.prefilter, activities.turn, activities.tools, activities.ticks and
activities.agent; these methods add only the activity name, heartbeating and logging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio import activity

from activities.agent import offline_reply
from activities.cases import run_task_cases, run_task_poll
from activities.machine import run_machine_call
from activities.prefilter import run_prefilter
from activities.ticks import complete_tick, record_receipt
from activities.tools import allowed_skills_for, run_tool_call
from activities.turn import run_agent_step
from contract.job import JobEndedRequest
from contract.machine import MachineCallRequest, MachineCallResult
from contract.messages import (
    AgentReply,
    AgentStepRequest,
    AgentStepResult,
    AgentTurnRequest,
    CompleteTickRequest,
    PrefilterRequest,
    PrefilterResult,
    ReceiptRequest,
    TaskCases,
    TaskCasesRequest,
    TaskPollRequest,
    TickCompletion,
    ToolCallRequest,
    ToolResult,
    WakeVisionRequest,
)
from contract.names import (
    AGENT_STEP,
    AGENT_TURN,
    COMPLETE_TICK,
    JOB_ENDED,
    MACHINE_CALL,
    PREFILTER,
    RECORD_RECEIPT,
    RECORD_VISION_PLAN,
    SIGNAL_ESCALATE,
    TASK_CASES,
    TASK_POLL,
    TASK_QUEUE,
    TOOL_CALL,
    VISION_WORKFLOW,
    WAKE_VISION,
    vision_workflow_id,
)
from contract.vision import VISION_PLAN_MEMORY_KIND, VisionInput, VisionPlan
from runtime.workflows import TemporalWorkflows
from skills.registry import SkillRegistry
from store.installed import installed_app
from store.store import Store

T = TypeVar("T")


HEARTBEAT_EVERY = 2.0  # seconds; the workflow's heartbeat timeout for agent steps is 10 s


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await `work` while telling Temporal this attempt is alive (worker death shows in seconds)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # a cancelled activity must not leave its LLM call running


class HeartbeatActivities:
    """Every activity a heartbeat tick runs. Holds no per-tick state: safe to share across ticks."""

    def __init__(self, store: Store, skills: SkillRegistry) -> None:
        self.store = store
        self.skills = skills

    @activity.defn(name=PREFILTER)
    async def prefilter(self, request: PrefilterRequest) -> PrefilterResult:
        """The tick's zero-LLM pre-filter; writes the `skipped` receipt itself when nothing is found."""
        return await run_prefilter(self.store, self.skills, request)

    @activity.defn(name=AGENT_TURN)
    async def agent_turn(self, request: AgentTurnRequest) -> AgentReply:
        """A whole agent turn in one activity: only ticks that began before the durable turn (each LLM
        and tool call its own activity) still schedule it; the deterministic offline agent answers."""
        reply = offline_reply(request)
        activity.logger.info(
            "agent %s (%s) for %s: %s/%s, %d rows in, %d chars out",
            request.tick.agent,
            request.model_tier,
            request.tick.heartbeat_id,
            reply.provider,
            reply.model,
            len(request.rows),
            len(reply.text),
        )
        return reply

    @activity.defn(name=TASK_POLL)
    async def task_poll(self, request: TaskPollRequest) -> TaskCases:
        """A task's poll: the pre-filter's rows as cases, minus those already processed."""
        return await run_task_poll(self.store, self.skills, request)

    @activity.defn(name=TASK_CASES)
    async def task_cases(self, request: TaskCasesRequest) -> TaskCases:
        """The cases a task's schedule or pushed triggers brought, minus those already processed."""
        return await run_task_cases(self.store, request)

    @activity.defn(name=COMPLETE_TICK)
    async def complete_tick(self, request: CompleteTickRequest) -> TickCompletion:
        """Reply protocol, conversation and memory writeback, receipt (idempotent per tick)."""
        return await complete_tick(self.store, request)

    @activity.defn(name=RECORD_RECEIPT)
    async def record_receipt(self, request: ReceiptRequest) -> bool:
        """The receipt of a tick that ended without a reply; False if it was already written."""
        return await record_receipt(self.store, request)

    @activity.defn(name=AGENT_STEP)
    async def agent_step(self, request: AgentStepRequest) -> AgentStepResult:
        """One LLM call of a turn (provider and model from the tenant's settings for the tier)."""
        response = await _heartbeating(run_agent_step(self.store, self.skills, request))
        activity.logger.info(
            "agent %s step %d for %s: %s/%s, %d tool calls, %d/%d tokens", request.tick.agent, request.step,
            request.tick.heartbeat_id, response.provider, response.model, len(response.tool_calls),
            response.tokens_in, response.tokens_out)
        return response

    @activity.defn(name=TOOL_CALL)
    async def tool_call(self, request: ToolCallRequest) -> ToolResult:
        """One tool call the model asked for, idempotent per key, scoped to the tick's tenant and app."""
        tick = request.tick
        allowed = await allowed_skills_for(self.store, tick.tenant, tick.app, tick.agent, definition=request.definition)
        return await run_tool_call(self.store, self.skills, request, allowed_skills=allowed,
                                   now=datetime.now(UTC), workflows=_workflows())

    @activity.defn(name=WAKE_VISION)
    async def wake_vision(self, request: WakeVisionRequest) -> None:
        """Signal-with-start the agent's VisionWorkflow with the escalation (not for an app that is
        no longer installed: an uninstall ends the vision loops and none may start again)."""
        tick = request.tick
        if await installed_app(self.store, tenant=tick.tenant, app=tick.app) is None:
            activity.logger.info("vision of %s not woken: app %s is not installed", tick.agent, tick.app)
            return
        await activity.client().start_workflow(
            VISION_WORKFLOW,
            VisionInput(tenant=tick.tenant, app=tick.app, agent=tick.agent),
            id=vision_workflow_id(tick.tenant, tick.app, tick.agent),
            task_queue=TASK_QUEUE,
            start_signal=SIGNAL_ESCALATE,
            start_signal_args=[request.reason],
            static_summary=f"vision loop of {tick.app}/{tick.agent}",
        )

    @activity.defn(name=JOB_ENDED)
    async def job_ended(self, request: JobEndedRequest) -> None:
        """A runtime task's workflow ended: its row says `done` or `cancelled` (idempotent)."""
        await self.store.runtime_tasks.end(tenant=request.tenant, app=request.app, agent=request.agent,
                                           key=request.key, status=request.status)

    @activity.defn(name=MACHINE_CALL)
    async def machine_call(self, request: MachineCallRequest) -> MachineCallResult:
        """One tool call of a state-machine transition, idempotent per key, scoped to its tenant and app."""
        return await _heartbeating(run_machine_call(self.store, self.skills, request, now=datetime.now(UTC),
                                                    workflows=_workflows()))

    @activity.defn(name=RECORD_VISION_PLAN)
    async def record_vision_plan(self, plan: VisionPlan) -> None:
        """Write a vision pass's plan to the agent's memory, once per pass."""
        tick = plan.tick
        existing = await self.store.memory.query(tenant=tick.tenant, app=tick.app, agent=tick.agent,
                                                 kind=VISION_PLAN_MEMORY_KIND, now=datetime.now(UTC), limit=5)
        if any(isinstance(entry.data, dict) and entry.data.get("pass") == tick.tick_id for entry in existing):
            return  # a retry after the write
        await self.store.memory.add(
            tenant=tick.tenant, app=tick.app, agent=tick.agent, kind=VISION_PLAN_MEMORY_KIND,
            content=plan.plan[:2000],
            data={"pass": tick.tick_id, "assess": plan.assess[:4000], "act": plan.act[:4000],
                  "provider": plan.provider, "model": plan.model})

    def all(self) -> list[Callable[..., Any]]:
        """The bound activity methods, for `Worker(activities=...)`."""
        return [self.prefilter, self.agent_turn, self.agent_step, self.tool_call, self.complete_tick,
                self.record_receipt, self.wake_vision, self.record_vision_plan, self.task_poll, self.task_cases,
                self.job_ended, self.machine_call]

    def llm(self) -> list[Callable[..., Any]]:
        """The activities workflows schedule on the LLM task queue: an agent step (one model call) and a
        tool call (only for the tools that call a model themselves, contract.llm.MODEL_CALLING_TOOLS)."""
        return [self.agent_step, self.tool_call]


def _workflows() -> TemporalWorkflows | None:
    """Temporal for the skills that start or signal workflows: the worker's own client."""
    try:
        return TemporalWorkflows(activity.client())
    except RuntimeError:  # an activity run without a worker's client (an ActivityEnvironment)
        return None
