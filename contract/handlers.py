"""Event handlers: what a chat message and an inbound message carry into workflow history.

A chat message is answered by the agent's chat workflow (`chat:{tenant}:{app}:{agent}:main`), one
Temporal Update per message, one at a time, in the agent's main conversation. An inbound message
starts its own workflow (`inbound:{tenant}:{app}:{agent}:m{digest}`), one per message id.

Bounded: texts are capped here (the HTTP API and the CLI refuse longer ones), and the handler's
prompt and tier are read from the installed manifest when the message arrives, never from the caller.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contract.vocabulary import ConversationMode, ModelTier

MAX_CHAT_CHARS = 8_000
MAX_INBOUND_TEXT_CHARS = 16_000
MAX_INBOUND_SUBJECT_CHARS = 500
MAX_INBOUND_FROM_CHARS = 320  # an email address's longest
MAX_MESSAGE_ID_CHARS = 128
# How long a chat caller waits for the reply by default; the turn goes on after that.
DEFAULT_CHAT_WAIT_SECONDS = 60.0
# A chat workflow with no message for this long ends; the next message starts it again.
CHAT_IDLE_SECONDS = 3600
# Turns before the chat workflow continues as new (history stays small; the thread is in the store).
CHAT_TURNS_PER_RUN = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatConfig(_Frozen):
    """Whose chat workflow this is."""

    tenant: str
    app: str
    agent: str
    workflow_id: str


class ChatInput(_Frozen):
    config: ChatConfig
    turns: int = 0  # answered before this run (continue-as-new carries it)


class IncomingChat(_Frozen):
    """One chat message (the update's argument). `id` is the caller's idempotency key: the update ID."""

    id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS)
    text: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)
    model_tier: ModelTier = "cheap"
    sent_at: datetime


class ChatAnswer(_Frozen):
    """The update's result: the agent's reply to one message."""

    message_id: str
    reply: str
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0


class InboundMessage(_Frozen):
    """An inbound message as the sender gave it (checked and capped)."""

    id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS)
    from_: str = Field(alias="from", min_length=1, max_length=MAX_INBOUND_FROM_CHARS)
    subject: str = Field(default="", max_length=MAX_INBOUND_SUBJECT_CHARS)
    text: str = Field(min_length=1, max_length=MAX_INBOUND_TEXT_CHARS)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def as_row(self) -> dict[str, str]:
        """What the agent is shown (and what enters history)."""
        return {"id": self.id, "from": self.from_, "subject": self.subject, "text": self.text}


class InboundInput(_Frozen):
    """The inbound workflow's input: the message and the handler in force when it arrived."""

    tenant: str
    app: str
    agent: str
    workflow_id: str
    message: InboundMessage
    prompt: str
    model_tier: ModelTier
    conversation_mode: ConversationMode
    received_at: datetime
