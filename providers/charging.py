"""What an agent's LLM calls are charged to and limited by (gateway.Charging), from the installed
manifest and the tenant's settings: the agent's monthly ceiling, the heartbeat's or task's per-call
and daily ceilings (found by the workflow ID the call serves), the tenant's zone and own prices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from contract.budget import Budget, SpendLedger, nano_usd
from manifest.app import AgentSpec
from manifest.models import BudgetSpec
from providers.gateway import Charging
from providers.pricing import TenantPrice


def charging_for(ledger: SpendLedger, agent: AgentSpec | None, workflow_id: str, *, timezone: str,
                 prices: Mapping[str, Sequence[str]]) -> Charging:
    entity = _entity_budget(agent, workflow_id)
    monthly = agent.budget.monthly_usd if agent is not None and agent.budget is not None else None
    budget = Budget(
        per_call_tokens=entity.per_call_tokens if entity else None,
        daily_nano_usd=nano_usd(entity.daily_usd) if entity and entity.daily_usd is not None else None,
        monthly_nano_usd=nano_usd(monthly) if monthly is not None else None,
        timezone=timezone,
    )
    tenant_prices = {model: TenantPrice(Decimal(pair[0]), Decimal(pair[1])) for model, pair in prices.items()}
    return Charging(ledger=ledger, budget=budget, tenant_prices=tenant_prices)


def _entity_budget(agent: AgentSpec | None, workflow_id: str) -> BudgetSpec | None:
    """The budget of the heartbeat or task `workflow_id` names (runtime tasks, chats, inbound
    messages and vision passes have only the agent's monthly ceiling)."""
    kind, _, rest = workflow_id.partition(":")
    routine = agent.routine(kind, rest.rsplit(":", 1)[-1]) if agent is not None else None
    return routine.budget if routine is not None else None
