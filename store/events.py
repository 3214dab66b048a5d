"""Events posted to an app: stored once per id (a retried post finds the first), bodies kept here
so the tasks they reach carry only the event's id in their workflow history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update

from store.checks import check_ids, check_json, check_text
from store.db import Area
from store.tables import EventRow
from store.types import utcnow

events: Table = EventRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    name: str
    body: Any
    received_at: datetime
    tasks: list[str] | None  # the task workflows it was delivered to; None until delivered
    delivered_at: datetime | None


class Events(Area):
    async def record(self, *, tenant: str, app: str, event_id: str, name: str, body: Any) -> tuple[StoredEvent, bool]:
        """Store the event unless one with this id exists: (the stored event, whether it is new).
        A repeat keeps the first body, however the repeat's differs."""
        check_ids(tenant=tenant, app=app)
        values = {
            "tenant_id": tenant, "app_id": app,
            "event_id": check_text(event_id, "event id", max_length=200),
            "name": check_text(name, "event name", max_length=128),
            "body": check_json(body, "event body"), "received_at": utcnow(),
        }
        async with self._db.write() as conn:
            inserted = (await conn.execute(
                self.insert(events).values(**values).on_conflict_do_nothing(
                    index_elements=[events.c.tenant_id, events.c.app_id, events.c.event_id]).returning(events.c.event_id)
            )).scalar_one_or_none()
            row = (await conn.execute(_one(tenant, app, event_id))).one()
        return _event(row), inserted is not None

    async def mark_delivered(self, *, tenant: str, app: str, event_id: str, tasks: list[str]) -> None:
        """Record which tasks the event was delivered to (a retried post answers with them)."""
        check_ids(tenant=tenant, app=app)
        async with self._db.write() as conn:
            await conn.execute(update(events).where(
                events.c.tenant_id == tenant, events.c.app_id == app, events.c.event_id == event_id,
            ).values(tasks=list(tasks), delivered_at=utcnow()))

    async def bodies(self, *, tenant: str, app: str, event_ids: Sequence[str]) -> dict[str, Any]:
        """The bodies of the app's events among `event_ids`, by id (absent ones are left out)."""
        check_ids(tenant=tenant, app=app)
        unique = sorted(set(event_ids))
        if not unique:
            return {}
        query = select(events.c.event_id, events.c.body).where(
            events.c.tenant_id == tenant, events.c.app_id == app, events.c.event_id.in_(unique))
        async with self._db.read() as conn:
            return {row.event_id: row.body for row in (await conn.execute(query)).all()}


def _one(tenant: str, app: str, event_id: str) -> Any:
    return select(events).where(events.c.tenant_id == tenant, events.c.app_id == app, events.c.event_id == event_id)


def _event(row: Any) -> StoredEvent:
    return StoredEvent(row.event_id, row.name, row.body, row.received_at, row.tasks, row.delivered_at)
