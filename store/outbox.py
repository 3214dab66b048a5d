"""The email outbox: what `email.send` queued, once per idempotency key. Nothing is sent from here."""

from __future__ import annotations

from sqlalchemy import Table, select

from store.checks import agent_columns, check_id, check_limit, check_text
from store.db import Area
from store.models import OutboxEmail
from store.tables import OutboxRow
from store.types import utcnow

outbox: Table = OutboxRow.__table__  # type: ignore[assignment]


class Outbox(Area):
    async def queue(
        self, *, tenant: str, app: str, agent: str, idempotency_key: str, to: str, subject: str, body: str
    ) -> tuple[int, bool]:
        """Queue an email, once per (tenant, app, idempotency_key): (outbox id, created).

        A repeat with the same key writes nothing (not even a changed body) and returns the first
        row's id with created False.
        """
        values = {
            **agent_columns(tenant=tenant, app=app, agent=agent),
            "idempotency_key": check_text(idempotency_key, "idempotency key", max_length=600),
            "to_address": check_text(to, "to", max_length=320),
            "subject": check_text(subject, "subject", allow_empty=True),
            "body": check_text(body, "body", allow_empty=True),
            "status": "queued",
            "created_at": utcnow(),
        }
        async with self._db.write() as conn:
            found, created = await self.insert_or_fetch(
                conn, outbox, values,
                unique=(outbox.c.tenant_id, outbox.c.app_id, outbox.c.idempotency_key),
                returning=outbox.c.id,
            )
        return int(found), created

    async def list(self, *, tenant: str, app: str | None = None, limit: int = 100) -> list[OutboxEmail]:
        """The tenant's queued emails (optionally of one app), oldest first."""
        check_id(tenant, "tenant id")
        query = select(outbox).where(outbox.c.tenant_id == tenant)
        if app is not None:
            check_id(app, "app id")
            query = query.where(outbox.c.app_id == app)
        query = query.order_by(outbox.c.id).limit(check_limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [OutboxEmail.from_row(row) for row in rows]
