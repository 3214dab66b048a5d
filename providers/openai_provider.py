"""OpenAI (and OpenAI-compatible servers) through the official SDK's Chat Completions API.

`openai.AsyncOpenAI` with max_retries=0. Chat Completions rather than Responses because it is what
Ollama, vLLM and llama.cpp speak: pointing OPENAI_BASE_URL at one of them is all it takes.

Mapping of the provider-neutral turn (providers.contract) to the wire format:

- `system` -> a leading `{"role": "system"}` message (omitted when empty).
- user message -> `{"role": "user", "content"}`; assistant message -> `{"role": "assistant",
  "content", "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]}` with
  the arguments as a JSON string; tool message -> `{"role": "tool", "tool_call_id", "content"}`.
- tools -> `{"type": "function", "function": {name, description, parameters}}`.
- the output cap: `max_completion_tokens` on api.openai.com (current models reject `max_tokens`),
  `max_tokens` on any other base URL (what self-hosted servers understand).
- response: `choices[0].message` -> text and ToolCall (arguments parsed from JSON),
  `usage.prompt_tokens` / `usage.completion_tokens` -> tokens_in / tokens_out (0 when a server
  reports no usage), `finish_reason` normalised to the Anthropic names (stop -> end_turn,
  tool_calls -> tool_use, length -> max_tokens, content_filter -> refusal).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import openai
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

PROVIDER = "openai"
OFFICIAL_HOST = "api.openai.com"

_STOP_REASONS = {
    "stop": STOP_END_TURN,
    "tool_calls": STOP_TOOL_USE,
    "function_call": STOP_TOOL_USE,
    "length": STOP_MAX_TOKENS,
    "content_filter": STOP_REFUSAL,
}


def _new_client(creds: Credentials) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=creds.key, base_url=creds.base_url, max_retries=0, timeout=DEFAULT_TIMEOUT_SECONDS
    )


def output_cap_param(base_url: str | None) -> str:
    """`max_completion_tokens` for OpenAI's own API, `max_tokens` for compatible servers."""
    if base_url is None or urlsplit(base_url).hostname == OFFICIAL_HOST:
        return "max_completion_tokens"
    return "max_tokens"


def _params(request: LlmRequest, creds: Credentials) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "messages": to_openai_messages(request.system, request.messages),
        output_cap_param(creds.base_url): request.max_tokens,
    }
    if request.tools:
        params["tools"] = to_openai_tools(request.tools)
    return params


async def _send(client: openai.AsyncOpenAI, params: dict[str, Any]) -> Any:
    return await client.chat.completions.create(**params)


OPENAI = SdkProvider(name=PROVIDER, sdk=openai, base_error=openai.OpenAIError, new_client=_new_client,
                     params=_params, send=_send, parse=lambda raw, request: from_openai_completion(raw, request))


async def complete(request: LlmRequest, *, timeout: float | None = None) -> LlmResponse:
    """One Chat Completions call. Raises ApplicationError with a stable type on every failure."""
    return await sdk_complete(OPENAI, request, timeout=timeout)


def to_openai_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def to_openai_messages(system: str, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.role == "tool":
            if not message.tool_call_id:
                raise ApplicationError(
                    "a tool message without tool_call_id cannot be sent to openai",
                    type=ERROR_PROVIDER_BAD_REQUEST,
                    non_retryable=True,
                )
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":")),
                        },
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        else:
            out.append({"role": "user", "content": message.content})
    return out


def from_openai_completion(completion: Any, request: LlmRequest) -> LlmResponse:
    """An SDK `ChatCompletion` as our LlmResponse."""
    if not completion.choices:
        raise unavailable(PROVIDER, "the API answered with no choices")
    choice = completion.choices[0]
    message = choice.message
    calls = [_tool_call(call) for call in message.tool_calls or () if getattr(call, "type", "function") == "function"]
    text = message.content or ""
    stop = _STOP_REASONS.get(choice.finish_reason, choice.finish_reason)
    refusal = getattr(message, "refusal", None)
    if refusal and not text:
        text, stop = refusal, STOP_REFUSAL
    if calls and stop == STOP_END_TURN:
        stop = STOP_TOOL_USE  # some compatible servers say "stop" when the model called tools
    usage = completion.usage
    return LlmResponse(
        text=text,
        tool_calls=calls,
        stop_reason=stop,
        provider=PROVIDER,
        model=completion.model or request.model,
        tokens_in=(usage.prompt_tokens or 0) if usage else 0,  # cached tokens included
        tokens_out=(usage.completion_tokens or 0) if usage else 0,
        cache_read_tokens=_cached_tokens(usage),
    )


def _cached_tokens(usage: Any) -> int:
    """Prompt tokens OpenAI served from its automatic cache (absent on older or compatible servers)."""
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return (getattr(details, "cached_tokens", None) or 0) if details else 0


def _tool_call(call: Any) -> ToolCall:
    raw = call.function.arguments or ""
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        # A model's malformed JSON: retryable, a new sample usually fixes it; the retry policy bounds it.
        raise unavailable(PROVIDER, f"tool call {call.function.name!r} came with arguments that are not JSON") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise unavailable(PROVIDER, f"tool call {call.function.name!r} came with arguments that are not an object")
    return ToolCall(id=call.id, name=call.function.name, arguments=arguments)
