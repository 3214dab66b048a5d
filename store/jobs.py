"""Runtime tasks: one row per (tenant, app, agent, key), kept after its workflow ends.

`create` is where the bounds hold, in one write transaction: a key that exists (active or done)
returns the existing task and changes nothing; a cancelled key may be created again; at most
`max_active` tasks per agent are active; one agent run creates at most `max_per_run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update

from store.checks import check_aware, check_choice, check_id, check_ids, check_json, check_text, optional_text
from store.db import Area
from store.errors import StoreError
from store.tables import RuntimeTaskRow
from store.types import iso_z, utcnow

runtime_tasks: Table = RuntimeTaskRow.__table__  # type: ignore[assignment]

STATUSES = ("active", "done", "cancelled")


class TaskLimitReached(StoreError):
    """Creating the task would pass a bound (active tasks per agent, tasks created per run)."""


@dataclass(frozen=True, slots=True)
class RuntimeTask:
    tenant: str
    app: str
    agent: str
    key: str
    workflow_id: str
    config: Any  # contract.job.JobConfig as JSON
    status: str
    created_by: str
    created_in: str | None
    created_at: datetime
    ended_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "app": self.app, "agent": self.agent, "key": self.key,
                "id": self.workflow_id, "status": self.status, "created_by": self.created_by,
                "created_at": iso_z(self.created_at), "ended_at": iso_z(self.ended_at),
                "config": self.config}


class RuntimeTasks(Area):
    async def create(self, *, tenant: str, app: str, agent: str, key: str, workflow_id: str, config: Any,
                     created_by: str, created_in: str | None, max_active: int, max_per_run: int,
                     now: datetime | None = None) -> tuple[RuntimeTask, bool]:
        """(the task, whether it was created now): see the module docstring for the rules."""
        check_ids(tenant=tenant, app=app)
        check_id(agent, "agent id")
        check_id(key, "task key")
        values = {
            "workflow_id": check_text(workflow_id, "workflow id", max_length=300),
            "config": check_json(config, "task config"), "status": "active",
            "created_by": check_text(created_by, "created_by", max_length=300),
            "created_in": optional_text(created_in, "created_in", max_length=400),
            "created_at": check_aware(now or utcnow(), "now"), "ended_at": None,
        }
        mine = _one(tenant, app, agent, key)
        async with self._db.write() as conn:
            existing = (await conn.execute(select(runtime_tasks).where(*mine))).one_or_none()
            if existing is not None and existing.status != "cancelled":
                return _task(existing), False
            active = (await conn.execute(select(func.count()).select_from(runtime_tasks).where(
                runtime_tasks.c.tenant_id == tenant, runtime_tasks.c.app_id == app,
                runtime_tasks.c.agent_id == agent, runtime_tasks.c.status == "active"))).scalar_one()
            if active >= max_active:
                raise TaskLimitReached(f"agent {agent!r} has {active} active runtime tasks, the most it may have"
                                       f" ({max_active}); cancel one first")
            if created_in is not None:
                made = (await conn.execute(select(func.count()).select_from(runtime_tasks).where(
                    runtime_tasks.c.created_in == created_in))).scalar_one()
                if made >= max_per_run:
                    raise TaskLimitReached(f"this run already created {made} runtime tasks, the most one run may"
                                           f" create ({max_per_run})")
            if existing is None:
                await conn.execute(runtime_tasks.insert().values(
                    tenant_id=tenant, app_id=app, agent_id=agent, task_key=key, **values))
            else:  # a cancelled key, created again
                await conn.execute(update(runtime_tasks).where(*mine).values(**values))
            row = (await conn.execute(select(runtime_tasks).where(*mine))).one()
        return _task(row), True

    async def get(self, *, tenant: str, app: str, agent: str, key: str) -> RuntimeTask | None:
        check_ids(tenant=tenant, app=app)
        async with self._db.read() as conn:
            row = (await conn.execute(select(runtime_tasks).where(*_one(tenant, app, agent, key)))).one_or_none()
        return _task(row) if row is not None else None

    async def list(self, *, tenant: str, app: str | None = None, agent: str | None = None,
                   status: str | None = None, limit: int = 1000) -> list[RuntimeTask]:
        """The tenant's runtime tasks (of one app, one agent, one status), newest first."""
        check_id(tenant, "tenant id")
        query = select(runtime_tasks).where(runtime_tasks.c.tenant_id == tenant)
        if app is not None:
            query = query.where(runtime_tasks.c.app_id == check_id(app, "app id"))
        if agent is not None:
            query = query.where(runtime_tasks.c.agent_id == check_id(agent, "agent id"))
        if status is not None:
            query = query.where(runtime_tasks.c.status == check_choice(status, STATUSES, "status"))
        query = query.order_by(runtime_tasks.c.created_at.desc(), runtime_tasks.c.task_key).limit(limit)
        async with self._db.read() as conn:
            return [_task(row) for row in (await conn.execute(query)).all()]

    async def end(self, *, tenant: str, app: str, agent: str, key: str, status: str,
                  now: datetime | None = None) -> bool:
        """Mark an active task `done` or `cancelled`; False when it was not active (idempotent)."""
        check_ids(tenant=tenant, app=app)
        check_choice(status, ("done", "cancelled"), "status")
        async with self._db.write() as conn:
            changed = await conn.execute(update(runtime_tasks).where(
                *_one(tenant, app, agent, key), runtime_tasks.c.status == "active",
            ).values(status=status, ended_at=check_aware(now or utcnow(), "now")))
        return changed.rowcount == 1


def _one(tenant: str, app: str, agent: str, key: str) -> tuple[Any, ...]:
    return (runtime_tasks.c.tenant_id == tenant, runtime_tasks.c.app_id == app, runtime_tasks.c.agent_id == agent,
            runtime_tasks.c.task_key == key)


def _task(row: Any) -> RuntimeTask:
    return RuntimeTask(row.tenant_id, row.app_id, row.agent_id, row.task_key, row.workflow_id, row.config, row.status,
                       row.created_by, row.created_in, row.created_at, row.ended_at)
