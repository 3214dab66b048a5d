"""What the SDK-backed providers share: environment, the per-process client cache, stop reasons.

Keys and base URLs come only from the SDKs' own environment variables, read at call time (so a
worker picks up a key set after import, and tests can monkeypatch them). Nothing here is ever put
into a message, a log line or workflow history except the base URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from temporalio.exceptions import ApplicationError

from contract.llm import ERROR_PROVIDER_NOT_CONFIGURED, LlmRequest, LlmResponse
from contract.vocabulary import ProviderName
from providers.errors import map_sdk_error, not_configured, unavailable

log = logging.getLogger("providers")

# Per HTTP call. The LLM activity's start_to_close timeout must be longer than this.
DEFAULT_TIMEOUT_SECONDS = 60.0

# Sent as the key to a self-hosted endpoint (OPENAI_BASE_URL / ANTHROPIC_BASE_URL set, no key):
# Ollama, vLLM and llama.cpp ignore it, but the SDKs refuse to build a client without one.
PLACEHOLDER_KEY = "no-key-configured"

# Stop reasons, normalised to the Anthropic vocabulary whatever the provider said.
STOP_END_TURN = "end_turn"
STOP_TOOL_USE = "tool_use"
STOP_MAX_TOKENS = "max_tokens"  # the per-call output cap was hit: the reply is cut off
STOP_REFUSAL = "refusal"


@dataclass(frozen=True, slots=True)
class ProviderEnv:
    """The SDK environment variables of one provider."""

    key_var: str
    base_url_var: str


PROVIDER_ENV: dict[str, ProviderEnv] = {
    "anthropic": ProviderEnv("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "openai": ProviderEnv("OPENAI_API_KEY", "OPENAI_BASE_URL"),
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """A key and an optional base URL for one call. `repr` never shows the key."""

    key: str
    base_url: str | None

    def __repr__(self) -> str:
        return f"Credentials(key=<{len(self.key)} chars>, base_url={self.base_url!r})"

    @property
    def fingerprint(self) -> str:
        """A short hash of the key: tells cached clients apart without keeping the key in the cache key."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]


def env_value(name: str) -> str | None:
    """An environment variable, None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def credentials(provider: ProviderName) -> Credentials:
    """The key and base URL of `provider` from its SDK variables, or ProviderNotConfigured.

    A base URL without a key means a self-hosted endpoint: it gets PLACEHOLDER_KEY.
    """
    env = PROVIDER_ENV[provider]
    key, base_url = env_value(env.key_var), env_value(env.base_url_var)
    if key is None and base_url is None:
        raise ApplicationError(
            f"{provider} is not configured: set {env.key_var} (or {env.base_url_var} for a self-hosted "
            f"endpoint), or choose another provider with `heartbeats tenant set T --provider ...`",
            type=ERROR_PROVIDER_NOT_CONFIGURED,
            non_retryable=True,
        )
    return Credentials(key=key or PLACEHOLDER_KEY, base_url=base_url)


def is_configured(provider: ProviderName) -> bool:
    """True when `provider` has a key or a base URL in the environment (offline always is)."""
    if provider == "offline":
        return True
    env = PROVIDER_ENV[provider]
    return env_value(env.key_var) is not None or env_value(env.base_url_var) is not None


# One client per (event loop, provider, base URL, key) and process. Per loop because an SDK client
# holds an HTTP connection pool bound to the loop it first ran on; tests and workers may run several.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def cached_client(provider: ProviderName, creds: Credentials, factory: Callable[[Credentials], Any]) -> Any:
    """The cached SDK client for these credentials on the running loop, built by `factory` once."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    cache_key = (provider, creds.base_url, creds.fingerprint)
    client = per_loop.get(cache_key)
    if client is None:
        client = per_loop[cache_key] = factory(creds)
    return client


def clear_client_cache() -> None:
    """Forget every cached client (tests; a worker never needs it)."""
    _clients.clear()


@dataclass(frozen=True, slots=True)
class SdkProvider:
    """One SDK-backed provider: how to build its client, its request, and read its response."""

    name: ProviderName
    sdk: ModuleType  # `anthropic` or `openai`: both name their exception classes alike
    base_error: type[Exception]  # every exception the SDK raises
    new_client: Callable[[Credentials], Any]
    params: Callable[[LlmRequest, Credentials], dict[str, Any]]
    send: Callable[[Any, dict[str, Any]], Awaitable[Any]]
    parse: Callable[[Any, LlmRequest], LlmResponse]


async def sdk_complete(provider: SdkProvider, request: LlmRequest, *, timeout: float | None = None) -> LlmResponse:
    """One call through the provider's SDK. Raises ApplicationError with a stable type on every failure."""
    creds = credentials(provider.name)
    client = cached_client(provider.name, creds, provider.new_client)
    params = provider.params(request, creds)
    if timeout is not None:
        params["timeout"] = timeout
    try:
        raw = await provider.send(client, params)
    except provider.base_error as exc:
        # `from None`: the SDK's message may quote the request or part of the key; only ours goes to history.
        raise _sdk_error(provider, exc, creds) from None
    except ValueError as exc:  # a body that is not JSON, or JSON of the wrong shape (SDK parsing)
        raise unavailable(provider.name, f"the API answered with a malformed body ({type(exc).__name__})") from None
    response = provider.parse(raw, request)
    log.debug("%s %s: %d tokens in, %d out, stop %s, %d tool calls", provider.name, response.model,
              response.tokens_in, response.tokens_out, response.stop_reason, len(response.tool_calls))
    return response


def _sdk_error(provider: SdkProvider, exc: Exception, creds: Credentials) -> ApplicationError:
    mapped = map_sdk_error(provider.name, exc, provider.sdk, key=creds.key)
    if mapped is not None:
        return mapped
    if "credentials" in type(exc).__name__.lower() or "credentials" in str(exc).lower():
        return not_configured(provider.name, f"credentials: {exc}")
    return unavailable(provider.name, f"{type(exc).__name__}: {exc}")
