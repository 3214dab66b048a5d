"""Tenants and app records: what an operator sets up before installing apps.

    tenant = await set_tenant(store, tenant="acme", timezone="Europe/Berlin")
    await put_record(store, tenant="acme", app="sales", record_type="campaign", record_id="q4", data={...})
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from client.checks import require_tenant
from providers.pricing import parse_price_option
from store.models import Record, Tenant
from store.store import Areas


async def set_tenant(store: Areas, *, tenant: str, prices: Sequence[str] = (), **settings: str | None) -> Tenant:
    """Create the tenant or change the settings given and not None (timezone, provider,
    model_cheap, model_standard, model_premium); the others keep their value. `prices` are
    `MODEL=IN,OUT` (USD per million tokens), added to the tenant's own prices."""
    parsed = dict(parse_price_option(text) for text in prices)
    own = {model: [str(price.input_usd_per_mtok), str(price.output_usd_per_mtok)] for model, price in parsed.items()}
    return await store.tenants.upsert(tenant=tenant, prices=own or None, **settings)


async def get_tenant(store: Areas, *, tenant: str) -> Tenant:
    """The tenant; NotFound telling how to create it."""
    return await require_tenant(store, tenant)


async def put_record(
    store: Areas, *, tenant: str, app: str, record_type: str, data: dict[str, Any], record_id: str | None = None
) -> str:
    """Create or replace one record of an existing tenant; its id (a short random one when not given)."""
    await require_tenant(store, tenant)
    record_id = record_id or secrets.token_hex(4)
    await store.records.put(tenant=tenant, app=app, record_type=record_type, record_id=record_id, data=data)
    return record_id


async def list_records(
    store: Areas, *, tenant: str, app: str, record_type: str | None = None, limit: int = 100
) -> list[Record]:
    """An existing tenant's app records, by key (optionally of one type)."""
    await require_tenant(store, tenant)
    return await store.records.list(tenant=tenant, app=app, record_type=record_type, limit=limit)
