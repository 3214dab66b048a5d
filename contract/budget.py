"""Budgets at call time: what one LLM call may cost, and the ledger it is charged to.

Amounts are integer nano-USD (1e-9 USD) wherever they are stored or compared: sums are exact, and
the largest (9.2e18) is far above any ceiling. `usd()` / `nano_usd()` convert at the edges.

The gateway (providers.gateway) applies a `Budget` to each call through a `SpendLedger` (the store's
`spend` area, passed in by the activity): the agent held for review → no call; estimate + output cap
above `per_call_tokens` → no call; the reservation above the task's day or the agent's month → no
call; else the call, then its settlement with the provider's usage. Each refusal is an
ApplicationError with one of the stable types below, which the workflows turn into receipts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal, Protocol

NANO = Decimal(1_000_000_000)

# Stable ApplicationError types (all non-retryable). `budget_exceeded` and `budget_unpriced` are
# configurations that cannot work: failures. `budget_daily` and `budget_monthly` are refusals: the
# receipt says `refused`, the failure count is unchanged.
ERROR_BUDGET_EXCEEDED = "budget_exceeded"
ERROR_BUDGET_UNPRICED = "budget_unpriced"
ERROR_BUDGET_DAILY = "budget_daily"
ERROR_BUDGET_MONTHLY = "budget_monthly"
BUDGET_REFUSALS = (ERROR_BUDGET_DAILY, ERROR_BUDGET_MONTHLY)
NON_RETRYABLE_BUDGET_ERRORS = (ERROR_BUDGET_EXCEEDED, ERROR_BUDGET_UNPRICED, ERROR_BUDGET_DAILY, ERROR_BUDGET_MONTHLY)

QUEUE_BUDGET_MONTHLY = "budget_monthly"


def nano_usd(amount: Decimal | float | int) -> int:
    """USD → nano-USD, rounded up (a cost is never under-counted)."""
    return int((Decimal(str(amount)) * NANO).to_integral_value(rounding=ROUND_CEILING))


def usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO


@dataclass(frozen=True)
class Budget:
    """The ceilings that apply to one call (None: no ceiling at that level)."""

    per_call_tokens: int | None = None
    daily_nano_usd: int | None = None  # the heartbeat's or task's, per tenant-local day
    monthly_nano_usd: int | None = None  # the agent's, per tenant-local month (the manifest's)
    timezone: str = "UTC"

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.per_call_tokens, self.daily_nano_usd, self.monthly_nano_usd))


@dataclass(frozen=True)
class SpendEntry:
    """Who a call is charged to and which call it is: `call_key` is the same for every retry."""

    tenant: str
    app: str
    agent: str
    workflow_id: str
    purpose: str
    call_key: str
    provider: str
    model: str
    local_day: str  # YYYY-MM-DD, tenant-local
    local_month: str  # YYYY-MM


class CeilingReached(Exception):
    """A reservation would pass a ceiling; nothing was reserved."""

    def __init__(self, level: Literal["daily", "monthly"], spent_nano: int, ceiling_nano: int, needed_nano: int) -> None:
        self.level = level
        self.spent_nano = spent_nano
        self.ceiling_nano = ceiling_nano
        self.needed_nano = needed_nano
        what = "this heartbeat's or task's day" if level == "daily" else "the agent's month"
        super().__init__(f"{level} budget: {what} has spent ${usd(spent_nano):.6f} of ${usd(ceiling_nano):.6f};"
                         f" this call may cost up to ${usd(needed_nano):.6f}")


class SpendLedger(Protocol):
    async def held(self, *, tenant: str, app: str, agent: str) -> bool:
        """Whether the agent is held for an operator's review (its monthly ceiling was reached)."""

    async def reserve(self, entry: SpendEntry, *, reserve_nano: int, daily_nano: int | None,
                      monthly_nano: int | None) -> None:
        """Reserve the call's most it may cost; CeilingReached (and, for the month, the hold) when it
        would pass a ceiling. A call_key reserved before (a retry) is kept as it is."""

    async def settle(self, entry: SpendEntry, *, tokens_in: int, tokens_out: int, cache_read_tokens: int,
                     cache_write_tokens: int, cost_nano: int | None) -> None:
        """Record what the call cost (None: no price known); exactly one row per call_key."""

    async def release(self, entry: SpendEntry) -> None:
        """The call failed without an answer: its reservation no longer counts."""
