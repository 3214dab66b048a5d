"""Tier routing: a heartbeat names a tier (cheap | standard | premium), never a model.

The tenant's settings (`heartbeats tenant set T --provider P --model-cheap M ...`) pick the provider
and, per tier, the model; whatever they leave unset comes from here:

- provider: `default_provider()`, from the environment;
- model: `DEFAULT_MODELS[provider][tier]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from temporalio.exceptions import ApplicationError

from contract.llm import ERROR_PROVIDER_NOT_CONFIGURED
from contract.vocabulary import ModelTier, ProviderName
from providers.base import env_value

PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
TIERS: tuple[ModelTier, ...] = get_args(ModelTier)

# Current generation per provider, cheapest to strongest. Override per tenant with
# `heartbeats tenant set T --model-cheap M --model-standard M --model-premium M`.
DEFAULT_MODELS: dict[ProviderName, dict[ModelTier, str]] = {
    "anthropic": {"cheap": "claude-haiku-5-5", "standard": "claude-sonnet-5-5", "premium": "claude-opus-5-5"},
    "openai": {"cheap": "gpt-6-luna", "standard": "gpt-6.2-sol", "premium": "gpt-6.2-astra"},
    "offline": {"cheap": "offline-cheap", "standard": "offline-standard", "premium": "offline-premium"},
}

# Which provider the environment makes the default, first match wins: a key beats a bare base URL
# (a self-hosted endpoint), and offline is the default only when nothing is configured.
_DEFAULT_ORDER: tuple[tuple[str, ProviderName], ...] = (
    ("ANTHROPIC_API_KEY", "anthropic"),
    ("OPENAI_API_KEY", "openai"),
    ("OPENAI_BASE_URL", "openai"),
    ("ANTHROPIC_BASE_URL", "anthropic"),
)


def default_provider() -> ProviderName:
    """anthropic if ANTHROPIC_API_KEY is set, else openai if OPENAI_API_KEY is, else a provider whose
    base URL is set (openai first), else offline."""
    return next((provider for var, provider in _DEFAULT_ORDER if env_value(var) is not None), "offline")


def resolve_model(
    *, tier: ModelTier, tenant_provider: str | None, tenant_models: Mapping[str, str | None]
) -> tuple[ProviderName, str]:
    """(provider, model) for a tier: the tenant's provider else `default_provider()`; the tenant's
    model for the tier else the provider's default. An unknown provider or tier is ProviderNotConfigured."""
    if tier not in TIERS:
        raise _not_configured(f"unknown model tier {tier!r}; expected one of {', '.join(TIERS)}")
    provider = tenant_provider or default_provider()
    if provider not in PROVIDERS:
        raise _not_configured(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    model = (tenant_models.get(tier) or "").strip() or DEFAULT_MODELS[provider][tier]
    return provider, model


def tenant_models(tenant: Any) -> dict[ModelTier, str | None]:
    """The per-tier models of a store Tenant (`model_cheap`, `model_standard`, `model_premium`)."""
    return {tier: getattr(tenant, f"model_{tier}", None) for tier in TIERS}


def resolve_for_tenant(tenant: Any | None, tier: ModelTier) -> tuple[ProviderName, str]:
    """`resolve_model` for a store Tenant (its `provider` and models), or the defaults when None."""
    if tenant is None:
        return resolve_model(tier=tier, tenant_provider=None, tenant_models={})
    return resolve_model(tier=tier, tenant_provider=tenant.provider, tenant_models=tenant_models(tenant))


def _not_configured(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERROR_PROVIDER_NOT_CONFIGURED, non_retryable=True)
