"""One event-handler turn (a chat message, an inbound message): the durable agent turn, then
COMPLETE_TICK with the incoming message, so the message and the reply land in the conversation
together, with the receipt, in one store transaction.

A failed turn leaves a `failed` receipt (`refused` when a budget ceiling refused it) and raises HandlerTurnFailed: there is no entity to disable,
the caller (the chat's update, the inbound workflow) says what failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.budget import BUDGET_REFUSALS
    from contract.messages import AgentReply, CompleteTickRequest, TickCompletion, TickRef
    from contract.names import COMPLETE_TICK
    from contract.vocabulary import ConversationMode, ModelTier
    from workflows.activity_options import STORE_ACTIVITY
    from workflows.entity import milliseconds, record_receipt
    from workflows.failures import error_text, error_type, excerpt, is_cancellation
    from workflows.turn import AgentTurn, run_agent_turn


class HandlerTurnFailed(Exception):
    """The turn failed after its retries; `reason` is the stable error type the receipt records."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class HandlerTurn:
    tick: TickRef
    purpose: Literal["chat", "inbound"]
    prompt: str
    model_tier: ModelTier
    conversation_mode: ConversationMode
    stored_message: str  # what the conversation keeps of the incoming message
    stored_role: Literal["user", "inbound"]
    rows: list[Any]
    summary: str


async def run_handler_turn(turn: HandlerTurn) -> AgentReply:
    tick = turn.tick
    started = workflow.now()
    try:
        reply = await run_agent_turn(AgentTurn(
            tick=tick, prompt=turn.prompt, rows=turn.rows, model_tier=turn.model_tier,
            conversation_mode=turn.conversation_mode, purpose=turn.purpose, summary=turn.summary))
        await workflow.execute_local_activity(
            COMPLETE_TICK,
            CompleteTickRequest(tick=tick, reply=reply, rows=len(turn.rows), conversation_mode=turn.conversation_mode,
                                duration_ms=milliseconds(workflow.now() - started),
                                user_message=turn.stored_message, user_role=turn.stored_role),
            result_type=TickCompletion, summary=f"reply → {excerpt(reply.text)}", **STORE_ACTIVITY)
    except FailureError as failure:
        if is_cancellation(failure):
            raise
        reason, error = error_type(failure), error_text(failure)
        # A ceiling that refused the call is not a fault of the work: `refused`, not `failed`.
        await record_receipt(tick, "refused" if reason in BUDGET_REFUSALS else "failed", reason=reason, error=error,
                             duration_ms=milliseconds(workflow.now() - started))
        raise HandlerTurnFailed(reason, error) from None
    return reply
