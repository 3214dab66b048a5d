"""The one way to call a model: `await call_llm(request, caller=Caller(...))`.

Every LLM call of every kind of run (a heartbeat's agent turn, a vision pass, a question delegated
to a teammate) goes through this function, and no other code calls a provider: whatever must hold
for all LLM calls (who is charged, with which model, at what token cost) has exactly one place.
The SDK modules load on the first call that needs them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from contract.llm import LlmRequest, LlmResponse
from providers import offline

log = logging.getLogger("providers.gateway")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an LLM call is made for: the tenant, app and agent it is charged to, and why."""

    tenant: str
    app: str
    agent: str
    workflow_id: str  # the run the call serves: heartbeat:..., vision:...
    purpose: str  # "turn" (an agent turn's step), "vision" (a vision phase), "delegate" (a teammate's answer)


async def call_llm(request: LlmRequest, *, caller: Caller, timeout: float | None = None) -> LlmResponse:
    """One LLM call to `request.provider`; `timeout` (seconds) overrides the provider's default.

    Raises ApplicationError: ProviderAuthError / ProviderBadRequest / ProviderNotConfigured
    (non-retryable) or ProviderUnavailable (retryable, with next_retry_delay from retry-after).
    """
    started = time.monotonic()
    if request.provider == "anthropic":
        from providers import anthropic_provider

        response = await anthropic_provider.complete(request, timeout=timeout)
    elif request.provider == "openai":
        from providers import openai_provider

        response = await openai_provider.complete(request, timeout=timeout)
    else:
        response = await offline.complete(request)
    log.info("%s for %s/%s/%s (%s): %s/%s, %d tokens in, %d out, %.0f ms", caller.purpose, caller.tenant,
             caller.app, caller.agent, caller.workflow_id, response.provider, response.model, response.tokens_in,
             response.tokens_out, (time.monotonic() - started) * 1000)
    return response
