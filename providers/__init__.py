"""LLM providers behind one gateway: `await call_llm(LlmRequest(...), caller=Caller(...)) -> LlmResponse`.

    from providers import Caller, call_llm, resolve_for_tenant
    provider, model = resolve_for_tenant(tenant, "cheap")
    response = await call_llm(LlmRequest(provider=provider, model=model, system=..., messages=[...]),
                              caller=Caller(tenant="acme", app="crm", agent="bot", workflow_id=..., purpose="turn"))

Imported by activities and skills, never by workflow code (the SDKs do I/O); the shapes of a call
live in contract.llm. The anthropic and openai SDKs load only when a call first needs them. Every
failure is a temporalio ApplicationError with a stable `type` (contract.llm.ERROR_PROVIDER_*); the
SDK clients never retry (max_retries=0): Temporal does.
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
from providers.gateway import Caller, call_llm
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
    "call_llm",
    "Caller",
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
