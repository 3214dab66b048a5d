"""LLM providers behind one call: `await complete(LlmRequest(...)) -> LlmResponse`.

    from providers import complete, resolve_model
    provider, model = resolve_model(tier="cheap", tenant_provider=tenant.provider,
                                    tenant_models=tenant_models(tenant))
    response = await complete(LlmRequest(provider=provider, model=model, system=..., messages=[...], tools=[...]))

Imported by activities only, never by workflow code (the SDKs do I/O). The shapes live in
providers.contract, which is pure and safe for the workflow sandbox; importing it runs this
module, which therefore loads the anthropic and openai SDKs only when `complete` first needs them. Every failure is a
temporalio ApplicationError with a stable `type` (providers.contract.ERROR_PROVIDER_*); the SDK
clients never retry (max_retries=0): Temporal does.
"""

from __future__ import annotations

from contract.llm import (
    ERROR_PROVIDER_AUTH,
    ERROR_PROVIDER_BAD_REQUEST,
    ERROR_PROVIDER_NOT_CONFIGURED,
    ERROR_PROVIDER_UNAVAILABLE,
    NON_RETRYABLE_PROVIDER_ERRORS,
    ChatMessage,
    LlmRequest,
    LlmResponse,
    ToolCall,
    ToolDef,
    split_tool_name,
    tool_name,
)
from contract.vocabulary import ModelTier, ProviderName
from providers import offline
from providers.base import (
    DEFAULT_TIMEOUT_SECONDS,
    STOP_END_TURN,
    STOP_MAX_TOKENS,
    STOP_REFUSAL,
    STOP_TOOL_USE,
    clear_client_cache,
    is_configured,
)
from providers.errors import MAX_RETRY_AFTER_SECONDS, redact
from providers.offline import estimate_tokens, extract_rows, format_rows, offline_model, summarise_row
from providers.routing import (
    DEFAULT_MODELS,
    PROVIDERS,
    TIERS,
    default_provider,
    resolve_for_tenant,
    resolve_model,
    tenant_models,
)

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_TIMEOUT_SECONDS",
    "ERROR_PROVIDER_AUTH",
    "ERROR_PROVIDER_BAD_REQUEST",
    "ERROR_PROVIDER_NOT_CONFIGURED",
    "ERROR_PROVIDER_UNAVAILABLE",
    "MAX_RETRY_AFTER_SECONDS",
    "NON_RETRYABLE_PROVIDER_ERRORS",
    "PROVIDERS",
    "STOP_END_TURN",
    "STOP_MAX_TOKENS",
    "STOP_REFUSAL",
    "STOP_TOOL_USE",
    "TIERS",
    "ChatMessage",
    "LlmRequest",
    "LlmResponse",
    "ModelTier",
    "ProviderName",
    "ToolCall",
    "ToolDef",
    "clear_client_cache",
    "complete",
    "default_provider",
    "estimate_tokens",
    "extract_rows",
    "format_rows",
    "is_configured",
    "offline_model",
    "redact",
    "resolve_for_tenant",
    "resolve_model",
    "split_tool_name",
    "summarise_row",
    "tenant_models",
    "tool_name",
]


async def complete(request: LlmRequest, *, timeout: float | None = None) -> LlmResponse:
    """One LLM call to `request.provider`; `timeout` (seconds) overrides DEFAULT_TIMEOUT_SECONDS.

    Raises ApplicationError: ProviderAuthError / ProviderBadRequest / ProviderNotConfigured
    (non-retryable) or ProviderUnavailable (retryable, with next_retry_delay from retry-after).
    """
    # The SDK modules load on first use: workflow code imports providers.contract, which runs this
    # package's __init__ inside the sandbox, and must not drag the HTTP clients in with it.
    if request.provider == "anthropic":
        from providers import anthropic_provider

        return await anthropic_provider.complete(request, timeout=timeout)
    if request.provider == "openai":
        from providers import openai_provider

        return await openai_provider.complete(request, timeout=timeout)
    return await offline.complete(request)
