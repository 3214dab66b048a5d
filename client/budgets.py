"""Budgets from the outside: what was spent, the operator queue, and the audit log. For the CLI and
the HTTP API.

    lines = await spend(store, tenant="acme", by="day")
    item = await resolve_item(store, tenant="acme", item_id=3, approve=True, approve_once=True, actor="operator:cli")

A monthly hold (an agent whose calls reached its `monthly_usd`) is one queue item. Approving it
takes one of two decisions, both audited: `approve_once` waives the ceiling for the rest of the
tenant-local month; `raise_monthly_usd` replaces the manifest's ceiling for the agent. Either lifts
the hold at once: the agent's heartbeats and tasks run again at their next due time. Rejecting it
closes the item and leaves the ceiling as it is (the agent's next call over it is held again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from client.checks import require_id, require_tenant
from contract.budget import QUEUE_BUDGET_MONTHLY, nano_usd
from contract.errors import Conflict, InvalidInput, NotFound
from store import Store
from store.installed import stored_manifest
from store.spend import GROUPS, AuditEntry, QueueItem, SpendGroup, SpendLine

__all__ = ["AgentMonth", "AuditEntry", "QueueItem", "agent_months", "SpendLine", "audit_log", "queue_items", "resolve_item", "spend"]


async def spend(store: Store, *, tenant: str, by: SpendGroup = "day", app: str | None = None,
                agent: str | None = None, since: date | None = None) -> list[SpendLine]:
    """The tenant's settled spend grouped by day, task (workflow ID), agent or model."""
    require_id(tenant, "tenant")
    if by not in GROUPS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPS)} (got {by!r})")
    for what, value in (("app", app), ("agent", agent)):
        if value is not None:
            require_id(value, what)
    await require_tenant(store, tenant)
    return await store.spend.summary(tenant=tenant, by=by, app=app, agent=agent,
                                     since_day=since.isoformat() if since else None)


@dataclass(frozen=True)
class AgentMonth:
    """An agent's spend this tenant-local month against its ceiling (None: it has none)."""

    app: str
    agent: str
    month: str
    spent_nano: int
    ceiling_nano: int | None
    declared_nano: int | None  # the manifest's ceiling (ceiling None and this set: waived this month)
    held: bool  # an open monthly hold: its calls are refused until someone decides

    @property
    def share(self) -> float | None:
        return self.spent_nano / self.ceiling_nano if self.ceiling_nano else None


async def agent_months(store: Store, *, tenant: str, now: datetime | None = None) -> list[AgentMonth]:
    """Every installed agent of the tenant (and any other that spent this month), with its spend this
    tenant-local month and its ceiling as the manifest sets it and an operator raised or waived it."""
    require_id(tenant, "tenant")
    zone = (await require_tenant(store, tenant)).timezone
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    month = local.strftime("%Y-%m")
    spent = {line.key: line.nano_usd for line in
             await store.spend.summary(tenant=tenant, by="agent", since_day=f"{month}-01")}
    declared: dict[str, int | None] = {}
    for app in await store.apps.list(tenant=tenant):
        manifest = stored_manifest(app)
        for agent in manifest.agents if manifest is not None else ():
            declared[f"{app.id}/{agent.id}"] = nano_usd(agent.budget.monthly_usd) if agent.budget else None
    months = []
    for key in sorted(set(declared) | set(spent)):
        app_id, _, agent_id = key.partition("/")
        ceiling = await store.spend.monthly_ceiling(tenant=tenant, app=app_id, agent=agent_id, month=month,
                                                    manifest_nano=declared.get(key))
        held = await store.spend.held(tenant=tenant, app=app_id, agent=agent_id)
        months.append(AgentMonth(app_id, agent_id, month, spent.get(key, 0), ceiling, declared.get(key), held))
    return months


async def queue_items(store: Store, *, tenant: str | None = None, status: str | None = "open") -> list[QueueItem]:
    if tenant is not None:
        require_id(tenant, "tenant")
        await require_tenant(store, tenant)
    if status not in (None, "open", "approved", "rejected"):
        raise InvalidInput(f"status must be open, approved or rejected (got {status!r})")
    return await store.queue.list(tenant=tenant, status=status)


async def resolve_item(store: Store, *, item_id: int, approve: bool, actor: str, tenant: str | None = None,
                       raise_monthly_usd: Decimal | str | None = None, approve_once: bool = False,
                       now: datetime | None = None) -> QueueItem:
    """Resolve an open item (of `tenant`, when given: the HTTP API always scopes by its path):
    NotFound when there is no such item, Conflict when it was resolved already, InvalidInput when
    the decision does not fit the item."""
    if tenant is not None:
        require_id(tenant, "tenant")
        await require_tenant(store, tenant)
    item = await store.queue.get(tenant=tenant, item_id=item_id)
    if item is None:
        whose = f"tenant {tenant!r} has" if tenant else "there is"
        raise NotFound(f"{whose} no queue item {item_id} (heartbeats queue list)")
    if item.status != "open":
        raise Conflict(f"queue item {item_id} was already resolved ({item.status} by {item.resolved_by})")
    raised = _usd(raise_monthly_usd) if raise_monthly_usd is not None else None
    if not approve and (raised is not None or approve_once):
        raise InvalidInput("--reject takes no --raise-monthly-usd or --approve-once")
    resolution: dict[str, Any] = {"decision": "approve" if approve else "reject"}
    monthly_nano = waive = None
    if approve and item.kind == QUEUE_BUDGET_MONTHLY:
        if (raised is None) == (not approve_once):
            raise InvalidInput("approving a monthly budget hold takes exactly one of --raise-monthly-usd X or"
                               " --approve-once")
        if raised is not None:
            monthly_nano = nano_usd(raised)
            resolution["raise_monthly_usd"] = str(raised)
        else:
            zone = (await require_tenant(store, item.tenant)).timezone  # "this month" is the tenant's
            local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
            waive = local.strftime("%Y-%m")
            resolution["approve_once"] = waive
    resolved = await store.queue.resolve(tenant=item.tenant, item_id=item_id, status="approved" if approve else "rejected",
                                         actor=actor, resolution=resolution, monthly_nano=monthly_nano,
                                         waive_month=waive)
    if resolved is None:  # resolved by someone else in between
        raise Conflict(f"queue item {item_id} was already resolved")
    return resolved


async def audit_log(store: Store, *, tenant: str, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
    require_id(tenant, "tenant")
    await require_tenant(store, tenant)
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"--limit must be between 1 and 1000 (got {limit})")
    return await store.audit.list(tenant=tenant, limit=limit, action=action)


def _usd(value: Decimal | str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"--raise-monthly-usd: {value!r} is not an amount of USD") from None
    if not amount.is_finite() or amount <= 0 or amount > 1_000_000:
        raise InvalidInput(f"--raise-monthly-usd: must be more than 0 and at most 1,000,000 USD (got {value})")
    return amount
