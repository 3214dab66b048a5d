"""The spend ledger: one row per LLM call, and the budget decisions made over it.

`reserve` is where the ceilings hold, in one write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL:
an advisory lock on the agent), so two calls of one agent never both pass a ceiling that only one
fits under. A row counts with its settled cost, or while still reserved, with its reservation:
spend never exceeds a ceiling by more than one call's estimation error.

Reaching the agent's monthly ceiling holds the agent: one open operator-queue item (`open_key`
unique) and one audit entry, in the same transaction; `held` is then true until an operator
resolves the item (client.budgets), whatever the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, case, func, select, text, update

from contract.budget import QUEUE_BUDGET_MONTHLY, CeilingReached, SpendEntry, usd
from store.checks import check_choice, check_id, check_ids
from store.db import Area
from store.models import JsonForm
from store.tables import AuditRow, BudgetOverrideRow, QueueItemRow, SpendRow
from store.types import utcnow

ledger: Table = SpendRow.__table__  # type: ignore[assignment]
overrides: Table = BudgetOverrideRow.__table__  # type: ignore[assignment]
queue: Table = QueueItemRow.__table__  # type: ignore[assignment]
audit: Table = AuditRow.__table__  # type: ignore[assignment]

SpendGroup = Literal["day", "task", "agent", "model"]
GROUPS: tuple[SpendGroup, ...] = ("day", "task", "agent", "model")

# What a row counts for: its settled cost, else (still reserved) its reservation.
_COUNTED = case((ledger.c.status == "settled", func.coalesce(ledger.c.nano_usd, 0)),
                else_=ledger.c.reserved_nano_usd)


def monthly_open_key(app: str, agent: str) -> str:
    return f"{QUEUE_BUDGET_MONTHLY}:{app}:{agent}"


@dataclass(frozen=True, slots=True)
class SpendLine:
    """One group of `heartbeats spend`: its key (a day, a workflow ID, an agent, a model) and totals."""

    key: str
    calls: int
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    nano_usd: int
    unpriced_calls: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "calls": self.calls, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cache_read_tokens": self.cache_read_tokens, "usd": f"{usd(self.nano_usd):.6f}",
                "unpriced_calls": self.unpriced_calls}


class Spend(Area):
    async def held(self, *, tenant: str, app: str, agent: str) -> bool:
        check_ids(tenant=tenant, app=app)
        query = select(queue.c.id).where(queue.c.tenant_id == tenant, queue.c.open_key == monthly_open_key(app, agent))
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def reserve(self, entry: SpendEntry, *, reserve_nano: int, daily_nano: int | None,
                      monthly_nano: int | None) -> None:
        _check_entry(entry)
        refused: CeilingReached | None = None
        async with self._db.write() as conn:
            if self.dialect == "postgresql":  # serialise one agent's reservations (SQLite: BEGIN IMMEDIATE)
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                   {"k": f"spend/{entry.tenant}/{entry.app}/{entry.agent}"})
            exists = select(ledger.c.id).where(ledger.c.tenant_id == entry.tenant, ledger.c.call_key == entry.call_key)
            if (await conn.execute(exists)).first() is not None:
                return  # a retry of a call reserved (or settled) before
            refused = await self._refusal(conn, entry, reserve_nano, daily_nano, monthly_nano)
            if refused is None:
                await conn.execute(ledger.insert().values(**_row(entry), status="reserved",
                                                          reserved_nano_usd=reserve_nano))
        # Raised once the refusal's own writes (the audit entry, the hold) are committed.
        if refused is not None:
            raise refused

    async def _refusal(self, conn: Any, entry: SpendEntry, reserve_nano: int, daily_nano: int | None,
                       monthly_nano: int | None) -> CeilingReached | None:
        if daily_nano is not None:
            spent = await _sum(conn, ledger.c.tenant_id == entry.tenant, ledger.c.workflow_id == entry.workflow_id,
                               ledger.c.local_day == entry.local_day)
            if spent + reserve_nano > daily_nano:
                await _audit_once(conn, entry, "budget_daily", entry.workflow_id,
                                  {"day": entry.local_day, "spent_usd": str(usd(spent)),
                                   "ceiling_usd": str(usd(daily_nano))})
                return CeilingReached("daily", spent, daily_nano, reserve_nano)
        monthly = await _monthly_ceiling(conn, entry.tenant, entry.app, entry.agent, entry.local_month, monthly_nano)
        if monthly is not None:
            spent = await _sum(conn, ledger.c.tenant_id == entry.tenant, ledger.c.app_id == entry.app,
                               ledger.c.agent_id == entry.agent, ledger.c.local_month == entry.local_month)
            if spent + reserve_nano > monthly:
                await _hold(self, conn, entry, spent, monthly)
                return CeilingReached("monthly", spent, monthly, reserve_nano)
        return None

    async def settle(self, entry: SpendEntry, *, tokens_in: int, tokens_out: int, cache_read_tokens: int,
                     cache_write_tokens: int, cost_nano: int | None) -> None:
        _check_entry(entry)
        values = {"status": "settled", "nano_usd": cost_nano, "tokens_in": tokens_in, "tokens_out": tokens_out,
                  "cache_read_tokens": cache_read_tokens, "cache_write_tokens": cache_write_tokens,
                  "settled_at": utcnow()}
        insert = self.insert(ledger).values(**_row(entry), reserved_nano_usd=0, **values)
        # Exactly one row per call: a reservation is settled in place; a settled row stays as it was
        # (a retried activity that called again is the same logical call).
        insert = insert.on_conflict_do_update(
            index_elements=[ledger.c.tenant_id, ledger.c.call_key],
            set_=values, where=ledger.c.status == "reserved")
        async with self._db.write() as conn:
            await conn.execute(insert)

    async def release(self, entry: SpendEntry) -> None:
        _check_entry(entry)
        async with self._db.write() as conn:
            await conn.execute(ledger.delete().where(ledger.c.tenant_id == entry.tenant,
                                                     ledger.c.call_key == entry.call_key,
                                                     ledger.c.status == "reserved"))

    async def summary(self, *, tenant: str, by: SpendGroup, app: str | None = None, agent: str | None = None,
                      since_day: str | None = None) -> list[SpendLine]:
        """Settled spend of the tenant grouped `by` day, task (workflow ID), agent or model."""
        check_id(tenant, "tenant id")
        check_choice(by, GROUPS, "--by")
        key = {"day": ledger.c.local_day, "task": ledger.c.workflow_id,
               "agent": ledger.c.app_id + "/" + ledger.c.agent_id, "model": ledger.c.provider + "/" + ledger.c.model}[by]
        query = (select(key.label("key"), func.count(), func.sum(ledger.c.tokens_in), func.sum(ledger.c.tokens_out),
                        func.sum(ledger.c.cache_read_tokens), func.sum(func.coalesce(ledger.c.nano_usd, 0)),
                        func.sum(case((ledger.c.nano_usd.is_(None), 1), else_=0)))
                 .where(ledger.c.tenant_id == tenant, ledger.c.status == "settled")
                 .group_by(key).order_by(key))
        if app is not None:
            query = query.where(ledger.c.app_id == check_id(app, "app id"))
        if agent is not None:
            query = query.where(ledger.c.agent_id == check_id(agent, "agent id"))
        if since_day is not None:
            query = query.where(ledger.c.local_day >= since_day)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [SpendLine(str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0),
                          int(r[6] or 0)) for r in rows]

    async def monthly_ceiling(self, *, tenant: str, app: str, agent: str, month: str,
                              manifest_nano: int | None) -> int | None:
        """The agent's ceiling for the tenant-local `month` (YYYY-MM): the manifest's, as an operator
        raised or waived it; None when there is none."""
        check_id(tenant, "tenant id")
        async with self._db.read() as conn:
            return await _monthly_ceiling(conn, tenant, app, agent, month, manifest_nano)

    async def calls(self, *, tenant: str, workflow_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The ledger rows of one workflow, newest first (for receipts and tests)."""
        check_id(tenant, "tenant id")
        query = (select(ledger).where(ledger.c.tenant_id == tenant, ledger.c.workflow_id == workflow_id)
                 .order_by(ledger.c.id.desc()).limit(limit))
        async with self._db.read() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]


def _check_entry(entry: SpendEntry) -> None:
    check_ids(tenant=entry.tenant, app=entry.app)
    check_id(entry.agent, "agent id")


def _row(entry: SpendEntry) -> dict[str, Any]:
    return {"tenant_id": entry.tenant, "app_id": entry.app, "agent_id": entry.agent, "workflow_id": entry.workflow_id,
            "purpose": entry.purpose[:32], "call_key": entry.call_key[:500], "provider": entry.provider,
            "model": entry.model[:200], "local_day": entry.local_day, "local_month": entry.local_month,
            "created_at": utcnow()}


async def _sum(conn: Any, *where: Any) -> int:
    return int((await conn.execute(select(func.coalesce(func.sum(_COUNTED), 0)).where(*where))).scalar_one())


async def _monthly_ceiling(conn: Any, tenant: str, app: str, agent: str, month: str,
                           manifest_nano: int | None) -> int | None:
    """The manifest's monthly ceiling, as an operator changed it: raised, or waived for this month."""
    found = (await conn.execute(select(overrides).where(
        overrides.c.tenant_id == tenant, overrides.c.app_id == app, overrides.c.agent_id == agent))).first()
    if found is None:
        return manifest_nano
    if found.waived_month == month:
        return None
    if manifest_nano is None:
        return None  # the manifest no longer sets one: an old raise does not impose one
    return found.monthly_nano_usd if found.monthly_nano_usd is not None else manifest_nano


async def _hold(area: Area, conn: Any, entry: SpendEntry, spent: int, ceiling: int) -> None:
    """One open queue item for the held agent (a second refusal finds it), audited once."""
    detail = {"month": entry.local_month, "spent_usd": str(usd(spent)), "ceiling_usd": str(usd(ceiling)),
              "refused_call": entry.workflow_id}
    subject = f"{entry.app}/{entry.agent}"
    if await _open_item(area, conn, tenant=entry.tenant, app=entry.app, agent=entry.agent, kind=QUEUE_BUDGET_MONTHLY,
                        subject=subject, open_key=monthly_open_key(entry.app, entry.agent), detail=detail):
        await _audit(conn, tenant=entry.tenant, actor="system", action="budget_monthly", target=subject, detail=detail)


async def _audit_once(conn: Any, entry: SpendEntry, action: str, target: str, detail: dict[str, Any]) -> None:
    """An audit entry for the first refusal of its kind per target and day (not one per tick)."""
    seen = select(audit.c.id).where(audit.c.tenant_id == entry.tenant, audit.c.action == action,
                                    audit.c.target == target, audit.c.detail["day"].as_string() == entry.local_day)
    if (await conn.execute(seen)).first() is None:
        await _audit(conn, tenant=entry.tenant, actor="system", action=action, target=target, detail=detail)


async def _open_item(area: Area, conn: Any, *, tenant: str, app: str, agent: str, kind: str, subject: str,
                     open_key: str, detail: dict[str, Any]) -> bool:
    """Open a queue item unless one with `open_key` is open already (then nothing changes): False."""
    insert = area.insert(queue).values(tenant_id=tenant, app_id=app, agent_id=agent, kind=kind, subject=subject,
                                       open_key=open_key, detail=detail, status="open", created_at=utcnow())
    created = await conn.execute(insert.on_conflict_do_nothing(index_elements=[queue.c.tenant_id, queue.c.open_key]))
    return bool(created.rowcount)


async def _audit(conn: Any, *, tenant: str, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    await conn.execute(audit.insert().values(tenant_id=tenant, at=utcnow(), actor=actor[:200], action=action[:64],
                                             target=target[:300], detail=detail))


@dataclass(frozen=True, slots=True)
class QueueItem(JsonForm):
    id: int
    tenant: str
    app: str
    agent: str
    kind: str
    subject: str
    detail: Any
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: Any


@dataclass(frozen=True, slots=True)
class AuditEntry(JsonForm):
    id: int
    tenant: str
    at: datetime
    actor: str
    action: str
    target: str
    detail: Any


class OperatorQueue(Area):
    async def open(self, *, tenant: str, app: str, agent: str, kind: str, subject: str, open_key: str,
                   detail: dict[str, Any]) -> bool:
        """Open an item unless one with `open_key` is open already (then nothing changes): False."""
        check_id(tenant, "tenant id")
        async with self._db.write() as conn:
            return await _open_item(self, conn, tenant=tenant, app=app, agent=agent, kind=kind, subject=subject,
                                    open_key=open_key, detail=detail)

    async def list(self, *, tenant: str | None = None, status: str | None = "open", limit: int = 500) -> list[QueueItem]:
        query = select(queue).order_by(queue.c.id).limit(limit)
        if tenant is not None:
            query = query.where(queue.c.tenant_id == check_id(tenant, "tenant id"))
        if status is not None:
            query = query.where(queue.c.status == check_choice(status, ("open", "approved", "rejected"), "status"))
        async with self._db.read() as conn:
            return [_item(row) for row in (await conn.execute(query)).all()]

    async def get(self, *, item_id: int, tenant: str | None = None) -> QueueItem | None:
        """The item; with `tenant`, only that tenant's (ids are unique across tenants)."""
        query = select(queue).where(queue.c.id == item_id)
        if tenant is not None:
            query = query.where(queue.c.tenant_id == check_id(tenant, "tenant id"))
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return _item(row) if row is not None else None

    async def resolve(self, *, tenant: str, item_id: int, status: Literal["approved", "rejected"], actor: str,
                      resolution: dict[str, Any], monthly_nano: int | None = None,
                      waive_month: str | None = None) -> QueueItem | None:
        """Close an open item, apply its budget decision and audit it, in one transaction; None when
        the tenant has no such open item."""
        check_id(tenant, "tenant id")
        check_choice(status, ("approved", "rejected"), "status")
        now = utcnow()
        async with self._db.write() as conn:
            row = (await conn.execute(select(queue).where(queue.c.tenant_id == tenant, queue.c.id == item_id,
                                                          queue.c.status == "open"))).first()
            if row is None:
                return None
            await conn.execute(update(queue).where(queue.c.id == item_id).values(
                status=status, open_key=None, resolved_at=now, resolved_by=actor, resolution=resolution))
            if monthly_nano is not None or waive_month is not None:
                changes = {"updated_at": now,
                           **({"monthly_nano_usd": monthly_nano} if monthly_nano is not None else {}),
                           **({"waived_month": waive_month} if waive_month is not None else {})}
                insert = self.insert(overrides).values(tenant_id=tenant, app_id=row.app_id, agent_id=row.agent_id,
                                                       **changes)
                await conn.execute(insert.on_conflict_do_update(
                    index_elements=[overrides.c.tenant_id, overrides.c.app_id, overrides.c.agent_id], set_=changes))
            await _audit(conn, tenant=tenant, actor=actor, action="queue_resolve", target=row.subject,
                         detail={"item": item_id, "kind": row.kind, "status": status, **resolution})
            found = (await conn.execute(select(queue).where(queue.c.id == item_id))).one()
        return _item(found)


class AuditLog(Area):
    async def add(self, *, tenant: str, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        check_id(tenant, "tenant id")
        async with self._db.write() as conn:
            await _audit(conn, tenant=tenant, actor=actor, action=action, target=target, detail=detail)

    async def list(self, *, tenant: str, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
        """The tenant's audit entries, newest first."""
        check_id(tenant, "tenant id")
        query = select(audit).where(audit.c.tenant_id == tenant).order_by(audit.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(audit.c.action == action)
        async with self._db.read() as conn:
            return [AuditEntry(r.id, r.tenant_id, r.at, r.actor, r.action, r.target, r.detail)
                    for r in (await conn.execute(query)).all()]


def _item(row: Any) -> QueueItem:
    return QueueItem(row.id, row.tenant_id, row.app_id, row.agent_id, row.kind, row.subject, row.detail, row.status,
                     row.created_at, row.resolved_at, row.resolved_by, row.resolution)
