"""The one way to call a model: `await call_llm(request, caller=Caller(...), charging=Charging(...))`.

Every LLM call of every kind of run (a heartbeat's or task's turn, a runtime task, a chat, an inbound
message, a vision pass, a question delegated to a teammate) goes through this function, and no other
code calls a provider: whatever must hold for all LLM calls (who is charged, with which model, at
what cost, under which ceiling) has exactly one place. The SDK modules load on the first call that
needs them.

With `charging`, a call is charged to the spend ledger under the caller's `call_key` (retries of one
logical call share it: one ledger row), in this order, each refusal before any provider call:
1. the agent is held for review (its monthly ceiling was reached) → `budget_monthly`;
2. with any ceiling: the input tokens are estimated (providers.estimate); estimate + output cap
   above `per_call_tokens` → `budget_exceeded`; no price for the model → `budget_unpriced` (fail
   closed: an unpriced model never counts as $0);
3. the most the call may cost (estimate × input price + output cap × output price) is reserved;
   above the task's day or the agent's month → `budget_daily` / `budget_monthly`;
4. the call; its reservation is settled with the provider's reported usage (released when the
   provider refused it for good).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from temporalio.exceptions import ApplicationError

from contract.budget import (
    ERROR_BUDGET_DAILY,
    ERROR_BUDGET_EXCEEDED,
    ERROR_BUDGET_MONTHLY,
    ERROR_BUDGET_UNPRICED,
    Budget,
    CeilingReached,
    SpendEntry,
    SpendLedger,
    nano_usd,
)
from contract.llm import LlmRequest, LlmResponse
from providers import offline
from providers.estimate import estimate_input_tokens
from providers.pricing import TenantPrice, cost_usd

log = logging.getLogger("providers.gateway")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an LLM call is made for: the tenant, app and agent it is charged to, and why."""

    tenant: str
    app: str
    agent: str
    workflow_id: str  # the run the call serves: heartbeat:..., task:..., chat:..., vision:...
    purpose: str  # tick, task, job, chat, inbound, vision (a turn's purpose), or delegate
    call_key: str = ""  # one logical call: the same for each retry of it (the ledger's key)
    # When the run was woken (a tick's due time): the tenant-local day and month it is charged to. A
    # retry later the same night still counts to the day of its tick; None: now.
    at: datetime | None = None


@dataclass(frozen=True)
class Charging:
    """Where a call is charged and what limits it: the ledger, the ceilings, the tenant's prices."""

    ledger: SpendLedger
    budget: Budget = field(default_factory=Budget)
    tenant_prices: Mapping[str, TenantPrice] = field(default_factory=dict)


async def call_llm(request: LlmRequest, *, caller: Caller, timeout: float | None = None,
                   charging: Charging | None = None) -> LlmResponse:
    """One LLM call to `request.provider`; `timeout` (seconds) overrides the provider's default.

    Raises ApplicationError: ProviderAuthError / ProviderBadRequest / ProviderNotConfigured
    (non-retryable) or ProviderUnavailable (retryable, with next_retry_delay from retry-after);
    with `charging`, the budget refusals of the module docstring (non-retryable).
    """
    if charging is None:
        return await _call(request, caller=caller, timeout=timeout)
    entry = _entry(request, caller, charging.budget)
    await _admit(request, caller, charging, entry)
    try:
        response = await _call(request, caller=caller, timeout=timeout)
    except ApplicationError as error:
        if error.non_retryable:  # refused for good: nothing was spent (a retryable error is retried)
            await charging.ledger.release(entry)
        raise
    # Priced by the model asked for: a provider may answer with a dated name a tenant's price lacks.
    cost = cost_usd(request.provider, request.model, tokens_in=response.tokens_in, tokens_out=response.tokens_out,
                    cache_read_tokens=response.cache_read_tokens, cache_write_tokens=response.cache_write_tokens,
                    tenant_prices=charging.tenant_prices)
    await charging.ledger.settle(entry, tokens_in=response.tokens_in, tokens_out=response.tokens_out,
                                 cache_read_tokens=response.cache_read_tokens,
                                 cache_write_tokens=response.cache_write_tokens,
                                 cost_nano=None if cost is None else nano_usd(cost))
    return response


async def _admit(request: LlmRequest, caller: Caller, charging: Charging, entry: SpendEntry) -> None:
    """The refusals before the call (module docstring, 1-3); a reservation when a ceiling applies."""
    budget = charging.budget
    if await charging.ledger.held(tenant=caller.tenant, app=caller.app, agent=caller.agent):
        raise ApplicationError(f"agent {caller.agent!r} is held for review: its monthly budget was reached"
                               " (heartbeats queue list)", type=ERROR_BUDGET_MONTHLY, non_retryable=True)
    if not budget.any:
        return
    estimate = await estimate_input_tokens(request)
    if budget.per_call_tokens is not None and estimate + request.max_tokens > budget.per_call_tokens:
        raise ApplicationError(
            f"this call may take {estimate} input tokens (estimated) + {request.max_tokens} output tokens, above"
            f" per_call_tokens {budget.per_call_tokens}", type=ERROR_BUDGET_EXCEEDED, non_retryable=True)
    most = cost_usd(request.provider, request.model, tokens_in=estimate, tokens_out=request.max_tokens,
                    tenant_prices=charging.tenant_prices)
    if most is None:
        raise ApplicationError(
            f"no price is known for model {request.model!r} ({request.provider}), and a budget applies: set one with"
            f" `heartbeats tenant set {caller.tenant} --price {request.model}=IN,OUT`",
            type=ERROR_BUDGET_UNPRICED, non_retryable=True)
    try:
        await charging.ledger.reserve(entry, reserve_nano=nano_usd(most), daily_nano=budget.daily_nano_usd,
                                      monthly_nano=budget.monthly_nano_usd)
    except CeilingReached as reached:
        kind = ERROR_BUDGET_DAILY if reached.level == "daily" else ERROR_BUDGET_MONTHLY
        raise ApplicationError(str(reached), type=kind, non_retryable=True) from None


def _entry(request: LlmRequest, caller: Caller, budget: Budget) -> SpendEntry:
    local = (caller.at or datetime.now(UTC)).astimezone(ZoneInfo(budget.timezone))
    return SpendEntry(tenant=caller.tenant, app=caller.app, agent=caller.agent, workflow_id=caller.workflow_id,
                      purpose=caller.purpose, call_key=caller.call_key or f"{caller.workflow_id}/{time.time_ns()}",
                      provider=request.provider, model=request.model, local_day=local.date().isoformat(),
                      local_month=local.strftime("%Y-%m"))


async def _call(request: LlmRequest, *, caller: Caller, timeout: float | None) -> LlmResponse:
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
