"""The durable agent turn, shared by every workflow that wakes an agent.

    reply = await run_agent_turn(AgentTurn(tick=tick, prompt=..., rows=..., model_tier="cheap", ...))

An LLM call, then the tool calls it asked for, then the next LLM call …, each its own activity: a
worker that dies mid-turn resumes after the last completed call and never repeats a tool call that
completed (its result is in history); a retried tool call carries the same idempotency key, so a
side effect happens once. Only the turn's own messages (tool calls and results, capped) enter
history. The turn is pinned to the agent definition its first step read (the manifest version's
hash): later steps and tool calls read that same version, even if the app is re-installed mid-turn.

The model calls (each step, and a tool call whose tool calls a model itself) go to the LLM task
queue, so LLM workers run apart from workflow workers. Turns of runs that scheduled them on the
workflow's own queue before that keep doing so (`workflow.patched(PATCH_LLM_TASK_QUEUE)`).

Limits: MAX_AGENT_STEPS LLM calls per turn (more fails with `max_steps`), and an LLM call that hits
the per-call output cap fails with `token_cap`: both are non-retryable, and count as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contract.llm import MODEL_CALLING_TOOLS, ChatMessage
    from contract.messages import (
        ERROR_MAX_STEPS,
        ERROR_TOKEN_CAP,
        MAX_AGENT_STEPS,
        MAX_TURN_MESSAGE_CHARS,
        AgentReply,
        AgentStepRequest,
        AgentStepResult,
        TickRef,
        ToolCallRequest,
        ToolResult,
        TurnPurpose,
    )
    from contract.names import AGENT_STEP, LLM_TASK_QUEUE, TOOL_CALL
    from contract.vocabulary import ConversationMode, ModelTier
    from workflows.activity_options import AGENT_ACTIVITY, TOOL_ACTIVITY

PATCH_LLM_TASK_QUEUE = "llm-calls-on-their-own-task-queue"

# Stop reasons (the providers normalise to these) that mean the reply was cut at the output cap.
_CUT_OFF = ("max_tokens", "length")


@dataclass(frozen=True)
class AgentTurn:
    """What one turn is about: whose tick, the prompt, the rows it was given, and how to call."""

    tick: TickRef
    prompt: str
    model_tier: ModelTier
    conversation_mode: ConversationMode
    rows: list[Any] = field(default_factory=list)
    truncated: bool = False
    purpose: TurnPurpose = "tick"
    # Unique per turn of the workflow: tool calls' idempotency keys are "{turn_id}/{step}/{index}".
    turn_id: str = ""
    # What the web UI shows: `label` names the turn's LLM calls ("agent cmo (cheap)"; later steps
    # add "step N"); `summary`, when given, is shown for the first call instead.
    label: str = ""
    summary: str = ""
    case_keys: list[str] = field(default_factory=list)  # a task run's cases (a shadow proposal's case)


async def run_agent_turn(turn: AgentTurn) -> AgentReply:
    """Run the turn to the model's final reply; ApplicationError `max_steps` / `token_cap` otherwise."""
    tick = turn.tick
    turn_id = turn.turn_id or f"{tick.heartbeat_id}/{tick.tick_id}"
    label = turn.label or f"agent {tick.agent} ({turn.model_tier})"
    messages: list[ChatMessage] = []
    tokens_in = tokens_out = 0
    definition: str | None = None
    shadow = False
    for step in range(MAX_AGENT_STEPS):
        response: AgentStepResult = await workflow.execute_activity(
            AGENT_STEP,
            AgentStepRequest(tick=tick, step=step, prompt=turn.prompt, rows=turn.rows, truncated=turn.truncated,
                             model_tier=turn.model_tier, conversation_mode=turn.conversation_mode,
                             turn=[message.model_dump(mode="json") for message in messages],
                             definition=definition, purpose=turn.purpose, turn_id=turn_id),
            result_type=AgentStepResult,
            summary=turn.summary if step == 0 and turn.summary else label if step == 0 else f"{label} step {step + 1}",
            task_queue=_llm_queue(),
            **AGENT_ACTIVITY,
        )
        definition = definition or response.definition
        if step == 0 and response.shadow:  # the web UI says so on every later call of the turn
            shadow, label = True, f"{label} · shadow"
        tokens_in += response.tokens_in
        tokens_out += response.tokens_out
        if response.stop_reason in _CUT_OFF:
            raise ApplicationError(
                f"the model hit the per-call output cap ({response.model}, step {step + 1})",
                type=ERROR_TOKEN_CAP, non_retryable=True)
        if not response.tool_calls:
            return AgentReply(text=response.text, provider=response.provider, model=response.model,
                              tokens_in=tokens_in, tokens_out=tokens_out, shadow=shadow)
        messages.append(ChatMessage(role="assistant", content=response.text[:MAX_TURN_MESSAGE_CHARS],
                                    tool_calls=response.tool_calls, provider_blocks=response.provider_blocks))
        for index, call in enumerate(response.tool_calls):
            result: ToolResult = await workflow.execute_activity(
                TOOL_CALL,
                ToolCallRequest(tick=tick, call_id=call.id, name=call.name, arguments=call.arguments,
                                idempotency_key=f"{turn_id}/{step}/{index}", definition=definition,
                                case_keys=turn.case_keys),
                result_type=ToolResult,
                summary=f"tool {call.name}" + (" · shadow" if shadow else ""),
                task_queue=_llm_queue() if call.name in MODEL_CALLING_TOOLS else None,
                **TOOL_ACTIVITY,
            )
            messages.append(ChatMessage(role="tool", content=result.content, tool_call_id=call.id))
    raise ApplicationError(f"no final reply after {MAX_AGENT_STEPS} LLM calls", type=ERROR_MAX_STEPS,
                           non_retryable=True)


def _llm_queue() -> str | None:
    """Where this run schedules model calls: the LLM task queue; None (the workflow's own queue) in a
    run that replays turns from before the split. The SDK keeps the answer for the rest of the run, so
    such a run moves over at its next continue-as-new, and workflow workers keep the LLM activities
    registered on their own queue for it."""
    return LLM_TASK_QUEUE if workflow.patched(PATCH_LLM_TASK_QUEUE) else None
