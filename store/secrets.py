"""Webhook secrets: per app, the key outside senders sign its events with (Standard Webhooks)."""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import Table, select

from store.checks import check_ids
from store.db import Area
from store.tables import WebhookSecretRow
from store.types import utcnow

webhook_secrets: Table = WebhookSecretRow.__table__  # type: ignore[assignment]

SECRET_PREFIX = "whsec_"  # the Standard Webhooks form: whsec_ + base64 of the key bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSecrets(Area):
    async def get(self, *, tenant: str, app: str) -> str | None:
        check_ids(tenant=tenant, app=app)
        query = select(webhook_secrets.c.secret).where(webhook_secrets.c.tenant_id == tenant,
                                                       webhook_secrets.c.app_id == app)
        async with self._db.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def get_or_create(self, *, tenant: str, app: str, rotate: bool = False) -> str:
        """The app's secret, made on first use; `rotate` replaces it (the old one stops verifying)."""
        check_ids(tenant=tenant, app=app)
        insert = self.insert(webhook_secrets).values(tenant_id=tenant, app_id=app, secret=new_secret(),
                                                     created_at=utcnow())
        statement = (insert.on_conflict_do_update(
            index_elements=[webhook_secrets.c.tenant_id, webhook_secrets.c.app_id],
            set_={"secret": insert.excluded.secret, "created_at": insert.excluded.created_at})
            if rotate else insert.on_conflict_do_nothing(
                index_elements=[webhook_secrets.c.tenant_id, webhook_secrets.c.app_id]))
        async with self._db.write() as conn:
            await conn.execute(statement)
        found = await self.get(tenant=tenant, app=app)
        assert found is not None
        return found
