"""Tenants: a tenant's time zone and LLM provider and models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select

from contract.vocabulary import PROVIDERS
from store.checks import check_choice, check_id, check_text, check_timezone
from store.db import Area
from store.errors import StoreError
from store.models import Tenant
from store.tables import TenantRow
from store.types import utcnow

tenants: Table = TenantRow.__table__  # type: ignore[assignment]


class Tenants(Area):
    async def upsert(
        self,
        *,
        tenant: str,
        timezone: str | None = None,
        provider: str | None = None,
        model_cheap: str | None = None,
        model_standard: str | None = None,
        model_premium: str | None = None,
        prices: dict[str, list[str]] | None = None,
    ) -> Tenant:
        """Create the tenant or change it; only the fields given (not None) change. `prices` are
        merged into the tenant's own prices by model ({model: [input, output]} USD per Mtok, as text)."""
        check_id(tenant, "tenant id")
        changes: dict[str, Any] = {}
        if timezone is not None:
            changes["timezone"] = check_timezone(timezone)
        if provider is not None:
            changes["llm_provider"] = check_choice(provider, PROVIDERS, "provider")
        for column, value in (("model_cheap", model_cheap), ("model_standard", model_standard),
                              ("model_premium", model_premium)):
            if value is not None:
                changes[column] = check_text(value, column, max_length=200)
        if prices:
            for model, pair in prices.items():
                check_text(model, "price model", max_length=200)
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                    raise StoreError(f"price of {model!r} must be [input, output] as text (got {pair!r})")
            async with self._db.read() as conn:
                kept = (await conn.execute(select(tenants.c.prices).where(tenants.c.id == tenant))).scalar_one_or_none()
            changes["prices"] = {**(kept or {}), **prices}
        now = utcnow()
        insert = self.insert(tenants).values(id=tenant, created_at=now, updated_at=now, **changes)
        insert = insert.on_conflict_do_update(index_elements=[tenants.c.id], set_={**changes, "updated_at": now})
        async with self._db.write() as conn:
            await conn.execute(insert)
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant))).one()
        return Tenant.from_row(row)

    async def get(self, *, tenant: str) -> Tenant | None:
        """The tenant, or None when it was never set."""
        check_id(tenant, "tenant id")
        async with self._db.read() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant))).first()
        return Tenant.from_row(row) if row else None

    async def list(self, *, limit: int = 10_000) -> list[Tenant]:
        """Every tenant, by id (the operator's view: the dashboard spans tenants)."""
        async with self._db.read() as conn:
            rows = (await conn.execute(select(tenants).order_by(tenants.c.id).limit(limit))).all()
        return [Tenant.from_row(row) for row in rows]
