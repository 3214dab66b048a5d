"""InboundWorkflow: one inbound message (`inbound:{tenant}:{app}:{agent}:m{digest}`), handled once.

The workflow ID is derived from the sender's message id, and a start of an ID that exists (running
or closed) starts nothing: the same message is handled once, however often it is delivered. Its
turn runs the agent's `on_inbound` prompt (as installed when the message arrived) with the message
as data; the reply goes to the handler's conversation (isolated by default), with a receipt. A
failed turn leaves a `failed` receipt and the workflow completes: the message is not retried.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.handlers import InboundInput
    from contract.messages import TickRef
    from contract.names import INBOUND_WORKFLOW
    from workflows.handler_turn import HandlerTurn, HandlerTurnFailed, run_handler_turn


@workflow.defn(name=INBOUND_WORKFLOW)
class InboundWorkflow:
    @workflow.run
    async def run(self, input: InboundInput) -> str:
        """The outcome: `substantive` or `failed: <reason>`."""
        message = input.message
        tick = TickRef(heartbeat_id=input.workflow_id, tenant=input.tenant, app=input.app, agent=input.agent,
                       slug=input.workflow_id.rsplit(":", 1)[1], tick_id="1", at=input.received_at, trigger="inbound")
        stored = f"Inbound from {message.from_}" + (f": {message.subject}" if message.subject else "") \
            + f"\n\n{message.text}"
        try:
            await run_handler_turn(HandlerTurn(
                tick=tick, purpose="inbound", prompt=input.prompt, model_tier=input.model_tier,
                conversation_mode=input.conversation_mode, stored_message=stored, stored_role="inbound",
                rows=[message.as_row()], summary=f"inbound from {message.from_} · agent {input.agent} ({input.model_tier})"))
        except HandlerTurnFailed as failed:
            return f"failed: {failed.reason}"
        return "substantive"
