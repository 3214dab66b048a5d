"""An agent's event handlers: what answers a chat message, and what handles an inbound message.

    on_chat: {prompt: "Answer briefly.", model_tier: cheap}
    on_inbound: {prompt: "Triage this message.", model_tier: cheap, conversation_mode: dedicated}

Without `on_chat` an agent takes no chat messages; without `on_inbound`, no inbound messages.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from manifest.models import ConversationMode, ManifestModel, ModelTier, check_prompt, problem


class OnChatSpec(ManifestModel):
    """Chat messages to the agent: each is one agent turn in its `main` conversation, answered at once."""

    prompt: str = Field(default="", description="Instruction added to the agent's system prompt for chats, at most "
                                                "8000 characters.")
    model_tier: ModelTier = Field(default="cheap")

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        return check_prompt(value)


class OnInboundSpec(ManifestModel):
    """Inbound messages to the agent (email, a form, another system): one agent turn per message id."""

    prompt: str = Field(min_length=1, description="What the agent is asked to do with each message, at most 8000 "
                                                  "characters.")
    model_tier: ModelTier = Field(default="cheap")
    conversation_mode: ConversationMode = Field(
        default="isolated", description="isolated (default): each message alone; dedicated or main: in that thread.")

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        if not value.strip():
            raise problem("must not be empty")
        return check_prompt(value)
