"""The provider-neutral shapes of one LLM call: what the agent turn sends and gets back.

The workflow carries these between the LLM activity and the tool activities, so they are recorded
in history. Never put keys or base URLs in them; the providers read those from the SDKs' own
environment variables.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.vocabulary import ProviderName

# Tool names are "{skill}__{tool}": both APIs allow only [A-Za-z0-9_-] in tool names.
TOOL_NAME_SEPARATOR = "__"

# Stable ApplicationError types of provider failures. Permanent ones are non-retryable and
# count toward the five-failure disable; rate limits, 5xx and timeouts are retried by Temporal.
ERROR_PROVIDER_AUTH = "ProviderAuthError"  # 401, 403
ERROR_PROVIDER_BAD_REQUEST = "ProviderBadRequest"  # 400, 404, 422
ERROR_PROVIDER_UNAVAILABLE = "ProviderUnavailable"  # 429, 5xx, timeouts, connection errors (retryable)
ERROR_PROVIDER_NOT_CONFIGURED = "ProviderNotConfigured"  # no key for the chosen provider
NON_RETRYABLE_PROVIDER_ERRORS = (ERROR_PROVIDER_AUTH, ERROR_PROVIDER_BAD_REQUEST, ERROR_PROVIDER_NOT_CONFIGURED)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def tool_name(skill: str, tool: str) -> str:
    return f"{skill}{TOOL_NAME_SEPARATOR}{tool}"


# Tools whose handler itself calls a model through the gateway (team.delegate's question asks another
# agent): their tool calls go to the LLM task queue with the agent steps.
MODEL_CALLING_TOOLS = frozenset({tool_name("team", "delegate")})


def split_tool_name(name: str) -> tuple[str, str]:
    skill, sep, tool = name.partition(TOOL_NAME_SEPARATOR)
    if not sep:
        raise ValueError(f"not a tool name: {name!r}")
    return skill, tool


class ToolDef(_Message):
    name: str  # "{skill}__{tool}"
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments


class ToolCall(_Message):
    id: str
    name: str
    arguments: dict[str, Any]


class ChatMessage(_Message):
    """One message of the turn. role "tool" carries a tool result for `tool_call_id`."""

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant only
    tool_call_id: str | None = None  # tool only
    # Provider-specific content that must be sent back unchanged in the next call of the same
    # turn (Anthropic's thinking blocks before tool results); assistant only.
    provider_blocks: list[dict[str, Any]] = Field(default_factory=list)


class LlmRequest(_Message):
    provider: ProviderName
    model: str
    system: str
    messages: list[ChatMessage]
    tools: list[ToolDef] = Field(default_factory=list)
    max_tokens: int = 1024  # the per-call output cap
    # How many leading `messages` are the stored conversation, the same on the next tick: a provider
    # that caches prompts explicitly marks the end of that prefix (and the system prompt and tools).
    cache_prefix: int = 0


class LlmResponse(_Message):
    text: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: str | None = None
    provider_blocks: list[dict[str, Any]] = Field(default_factory=list)  # see ChatMessage
    provider: ProviderName
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    # Prompt-cache tokens as the provider reports them (priced at cache prices in the ledger).
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
