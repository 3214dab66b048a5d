"""Anthropic through the official SDK's Messages API (`anthropic.AsyncAnthropic`, max_retries=0).

Mapping of the provider-neutral turn (providers.contract) to the wire format:

- `system` -> the top-level `system`, one text block marked as a prompt-cache breakpoint (omitted
  when empty). Prompt caching: up to three `cache_control` breakpoints, on what repeats from one
  tick to the next of a heartbeat: the system prompt, the last tool, and the end of the
  conversation history (`LlmRequest.cache_prefix` messages); Anthropic ignores a breakpoint whose
  prefix is below the model's minimum, so small prompts cost the same as before.
- user message -> a `text` block; assistant message -> its `text` block then one `tool_use` block
  per ToolCall (`id`, `name`, `input`); tool message -> a `tool_result` block (`tool_use_id`,
  `content`) in a *user* message. Consecutive messages of one role are merged into one message, so
  the tool results answering one assistant turn travel together, as the API requires.
- tools -> `{name, description, input_schema}`.
- response: `text` blocks joined, `tool_use` blocks -> ToolCall, `usage.input_tokens` (plus cache
  reads and writes) -> tokens_in, `usage.output_tokens` -> tokens_out.

Models that always think (adaptive thinking) return `thinking` blocks that must be sent back, unchanged,
in the assistant message before the tool results of a multi-step turn. When the contract carries them
(`LlmResponse.provider_blocks` / `ChatMessage.provider_blocks`, opaque lists of dicts), they are
returned and replayed; without those fields they are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anthropic
from temporalio.exceptions import ApplicationError

from contract.llm import ERROR_PROVIDER_BAD_REQUEST, ChatMessage, LlmRequest, LlmResponse, ToolCall, ToolDef
from providers.base import (
    DEFAULT_TIMEOUT_SECONDS,
    STOP_END_TURN,
    STOP_MAX_TOKENS,
    STOP_REFUSAL,
    STOP_TOOL_USE,
    Credentials,
    SdkProvider,
    sdk_complete,
)
from providers.errors import unavailable

PROVIDER = "anthropic"

_STOP_REASONS = {
    "end_turn": STOP_END_TURN,
    "stop_sequence": STOP_END_TURN,
    "tool_use": STOP_TOOL_USE,
    "max_tokens": STOP_MAX_TOKENS,
    "refusal": STOP_REFUSAL,
}
# Opaque provider content replayed verbatim (see the module docstring), if the contract has the field.
PROVIDER_BLOCKS_FIELD = "provider_blocks"
_REPLAYED_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})


def _new_client(creds: Credentials) -> anthropic.AsyncAnthropic:
    # An explicit api_key: the SDK then consults no other credential source (profiles, files).
    return anthropic.AsyncAnthropic(
        api_key=creds.key, base_url=creds.base_url, max_retries=0, timeout=DEFAULT_TIMEOUT_SECONDS
    )


CACHE_BREAKPOINT = {"type": "ephemeral"}


def _params(request: LlmRequest, _creds: Credentials) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": cached_messages(request.messages, request.cache_prefix),
    }
    if request.system:
        params["system"] = [{"type": "text", "text": request.system, "cache_control": CACHE_BREAKPOINT}]
    if request.tools:
        tools = to_anthropic_tools(request.tools)
        tools[-1] = {**tools[-1], "cache_control": CACHE_BREAKPOINT}
        params["tools"] = tools
    return params


def cached_messages(messages: Sequence[ChatMessage], prefix: int) -> list[dict[str, Any]]:
    """The messages, the last block of the first `prefix` (the stored conversation) marked as a
    cache breakpoint: the next tick of the thread reads that prefix from the cache."""
    head = to_anthropic_messages(messages[:prefix]) if prefix > 0 else []
    tail = to_anthropic_messages(messages[prefix:])
    if head:
        last = head[-1]
        blocks = [{"type": "text", "text": last["content"]}] if isinstance(last["content"], str) else last["content"]
        last["content"] = [*blocks[:-1], {**blocks[-1], "cache_control": CACHE_BREAKPOINT}]
    if head and tail and head[-1]["role"] == tail[0]["role"]:  # keep the roles alternating
        tail_content = tail[0]["content"]
        head[-1]["content"].extend([{"type": "text", "text": tail_content}] if isinstance(tail_content, str)
                                   else tail_content)
        tail = tail[1:]
    return head + tail


async def _send(client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> Any:
    return await client.messages.create(**params)


ANTHROPIC = SdkProvider(name=PROVIDER, sdk=anthropic, base_error=anthropic.AnthropicError, new_client=_new_client,
                        params=_params, send=_send, parse=lambda raw, request: from_anthropic_message(raw, request))


async def complete(request: LlmRequest, *, timeout: float | None = None) -> LlmResponse:
    """One Messages API call. Raises ApplicationError with a stable type on every failure."""
    return await sdk_complete(ANTHROPIC, request, timeout=timeout)


def to_anthropic_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def to_anthropic_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Our messages as Messages API `messages`: roles user/assistant only, content as blocks.

    Empty text is left out (the API rejects empty text blocks); a message left with no blocks is dropped.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for entry in out:  # a lone text block reads better (and logs smaller) as a plain string
        content = entry["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            entry["content"] = content[0]["text"]
    return out


def _blocks(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ApplicationError(
                "a tool message without tool_call_id cannot be sent to anthropic",
                type=ERROR_PROVIDER_BAD_REQUEST,
                non_retryable=True,
            )
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        return "user", [result]
    blocks: list[dict[str, Any]] = []
    if message.role == "assistant":
        blocks.extend(dict(b) for b in getattr(message, PROVIDER_BLOCKS_FIELD, None) or ())
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in message.tool_calls
        )
    return message.role, blocks


def from_anthropic_message(message: Any, request: LlmRequest) -> LlmResponse:
    """An SDK `Message` as our LlmResponse."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    replayed: list[dict[str, Any]] = []
    for block in message.content or ():
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            if not isinstance(block.input, dict):
                raise unavailable(PROVIDER, f"tool_use {block.name!r} came with non-object input")
            calls.append(ToolCall(id=block.id, name=block.name, arguments=dict(block.input)))
        elif kind in _REPLAYED_BLOCK_TYPES:
            replayed.append(block.to_dict())
    usage = message.usage
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    tokens_in = (usage.input_tokens or 0) + cache_write + cache_read  # every input token, cached or not
    fields: dict[str, Any] = {
        "text": "\n".join(t for t in texts if t),
        "tool_calls": calls,
        "stop_reason": _STOP_REASONS.get(message.stop_reason, message.stop_reason),
        "provider": PROVIDER,
        "model": message.model or request.model,
        "tokens_in": tokens_in,
        "tokens_out": usage.output_tokens or 0,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }
    if replayed and PROVIDER_BLOCKS_FIELD in LlmResponse.model_fields:
        fields[PROVIDER_BLOCKS_FIELD] = replayed
    return LlmResponse(**fields)
