"""ChatWorkflow: an agent's chat (`chat:{tenant}:{app}:{agent}:main`), one Temporal Update per message.

    answer = await handle.execute_update(UPDATE_CHAT, IncomingChat(id=..., text="How are sales?", ...))

Each message is one durable agent turn in the agent's `main` conversation, answered in the order
they arrived, one at a time (so the second message's turn sees the first's reply). The message and
the reply are stored together, with the turn's receipt (tick id = the message id), so a message the
caller sends again after a lost answer is stored once.

A caller that stops waiting (a slow model) does not stop the turn: it completes and is recorded,
and the conversation shows it. The workflow is started by the first message (update-with-start),
ends after CHAT_IDLE_SECONDS without a message, and continues as new every CHAT_TURNS_PER_RUN turns.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contract.handlers import (
        CHAT_IDLE_SECONDS,
        CHAT_TURNS_PER_RUN,
        ChatAnswer,
        ChatConfig,
        ChatInput,
        IncomingChat,
    )
    from contract.messages import TickRef
    from contract.names import CHAT_WORKFLOW, UPDATE_CHAT
    from workflows.handler_turn import HandlerTurn, HandlerTurnFailed, run_handler_turn

# The update's failure type when the agent's turn failed (the receipt has the details).
ERROR_CHAT_TURN_FAILED = "ChatTurnFailed"


@workflow.defn(name=CHAT_WORKFLOW)
class ChatWorkflow:
    @workflow.init
    def __init__(self, input: ChatInput) -> None:
        self._config: ChatConfig = input.config
        self._turns = input.turns
        self._turns_this_run = 0
        self._received = 0  # messages this run: the idle timer restarts when it changes
        self._lock = asyncio.Lock()  # one turn at a time, in arrival order

    @workflow.run
    async def run(self, input: ChatInput) -> None:
        while True:
            seen = self._received
            try:
                await workflow.wait_condition(
                    lambda seen=seen: self._received != seen or self._turns_this_run >= CHAT_TURNS_PER_RUN
                    or workflow.info().is_continue_as_new_suggested(),
                    timeout=timedelta(seconds=CHAT_IDLE_SECONDS), timeout_summary="close when idle")
            except TimeoutError:
                if workflow.all_handlers_finished():
                    return  # idle: the next message starts it again
                continue
            if self._received != seen and self._turns_this_run < CHAT_TURNS_PER_RUN \
                    and not workflow.info().is_continue_as_new_suggested():
                continue  # a message came: the idle time counts from now
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(ChatInput(config=self._config, turns=self._turns))

    @workflow.update(name=UPDATE_CHAT)
    async def chat(self, message: IncomingChat) -> ChatAnswer:
        """Answer one chat message (after the ones before it)."""
        self._received += 1
        config = self._config
        async with self._lock:
            tick = TickRef(heartbeat_id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent,
                           slug="main", tick_id=message.id, at=message.sent_at, trigger="chat")
            try:
                reply = await run_handler_turn(HandlerTurn(
                    tick=tick, purpose="chat", prompt=message.text, model_tier=message.model_tier,
                    conversation_mode="main", stored_message=message.text, stored_role="user", rows=[],
                    summary=f"chat · agent {config.agent} ({message.model_tier})"))
            except HandlerTurnFailed as failed:
                raise ApplicationError(f"the agent could not answer: {failed}", type=ERROR_CHAT_TURN_FAILED,
                                       non_retryable=True) from None
            finally:
                self._turns += 1
                self._turns_this_run += 1
        return ChatAnswer(message_id=message.id, reply=reply.text, provider=reply.provider, model=reply.model,
                          tokens_in=reply.tokens_in, tokens_out=reply.tokens_out)

    @chat.validator
    def _check_chat(self, message: IncomingChat) -> None:
        # Rejected before it enters history: a closing run takes no new message (the caller retries
        # and the next run answers it).
        if self._turns_this_run >= CHAT_TURNS_PER_RUN:
            raise ValueError("this chat run is about to continue as new; send the message again")
