"""The data store (SQLAlchemy, async), by area: tenants, apps, records and kv, agent memory,
conversations, the email outbox, tick receipts. Imported by activities, skills and the client
library, never by workflow code.

    from store import open_store
    store = await open_store()   # migrates the database on first use

The names below load on first access, so `import store.constants` does not pull in SQLAlchemy
and alembic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "App": "store.models",
    "DatabaseUrlError": "store.errors",
    "NotFoundError": "store.errors",
    "Store": "store.store",
    "StoreError": "store.errors",
    "Tenant": "store.models",
    "Transaction": "store.store",
    "open_store": "store.store",
}

__all__ = ["App", "DatabaseUrlError", "NotFoundError", "Store", "StoreError", "Tenant", "Transaction", "open_store"]

if TYPE_CHECKING:
    from store.errors import DatabaseUrlError, NotFoundError, StoreError
    from store.models import App, Tenant
    from store.store import Store, Transaction, open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'store' has no attribute {name!r}")
    return getattr(import_module(module), name)
