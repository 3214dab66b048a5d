"""The store: one engine, a data area per kind of data, and units of work that span areas.

Every area method is keyword-only and takes `tenant=` (and `app=` / `agent=` where the data
belongs to them); every statement filters on them, so one tenant can never read or change
another's rows. Results are frozen values (store.models) with aware datetimes.

    store = await open_store()          # HEARTBEATS_DATABASE_URL, or .data/heartbeats.db
    await store.tenants.upsert(tenant="acme", timezone="Europe/Berlin")
    await store.kv.set(tenant="acme", app="crm", key="lead:42", value={"status": "open"})
    async with store.transaction() as tx:    # one unit of work: all of it commits, or none
        if await tx.receipts.add(...):
            await tx.memory.add(...)
    await store.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.apps import Apps
from store.config import resolve_database_url
from store.conversations import Conversations
from store.db import Db, SharedTransaction, TransactionPerCall, create_engine, transaction
from store.dedupe import Dedupe
from store.documents import Documents
from store.events import Events
from store.idempotency import IdempotentRequests
from store.jobs import RuntimeTasks
from store.memory import Memory
from store.metrics import Metrics
from store.migrate import upgrade
from store.outbox import Outbox
from store.receipts import Receipts
from store.records import Kv, Records
from store.secrets import WebhookSecrets
from store.shadow import Shadow
from store.spend import AuditLog, OperatorQueue, Spend
from store.tenants import Tenants

FIRST_OPEN_ATTEMPTS = 20


async def open_store(url: str | None = None, *, connect_args: dict[str, Any] | None = None) -> Store:
    """Open the store and bring its schema to the newest migration.

    `url` defaults to HEARTBEATS_DATABASE_URL, else the SQLite file `.data/heartbeats.db` under the
    current directory (the folder is created). `connect_args` go to the driver, e.g.
    `{"server_settings": {"search_path": "myschema"}}` for asyncpg.
    """
    engine = create_engine(resolve_database_url(url), connect_args or {})
    try:
        for attempt in range(FIRST_OPEN_ATTEMPTS):
            try:
                async with transaction(engine, write=True) as conn:
                    await upgrade(conn)
                break
            except OperationalError as exc:
                # Switching a brand-new SQLite file to WAL needs it to itself for a moment, and the
                # busy timeout does not cover that: several first opens at once can find it locked.
                if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == FIRST_OPEN_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.02 * (attempt + 1))
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine)


class Areas:
    """The data areas over one Db."""

    def __init__(self, db: Db) -> None:
        self.tenants = Tenants(db)
        self.apps = Apps(db)
        self.records = Records(db)
        self.kv = Kv(db)
        self.memory = Memory(db)
        self.conversations = Conversations(db)
        self.outbox = Outbox(db)
        self.receipts = Receipts(db)
        self.dedupe = Dedupe(db)
        self.events = Events(db)
        self.metrics = Metrics(db)
        self.webhook_secrets = WebhookSecrets(db)
        self.idempotency = IdempotentRequests(db)
        self.runtime_tasks = RuntimeTasks(db)
        self.spend = Spend(db)
        self.queue = OperatorQueue(db)
        self.audit = AuditLog(db)
        self.shadow = Shadow(db)
        self.documents = Documents(db)


class Transaction(Areas):
    """A unit of work: every area call shares one transaction, committed when the block ends."""


class Store(Areas):
    """Data access for the platform. Create it with `open_store()`; `close()` when done.

    Each area call on the store is its own transaction; `transaction()` groups calls into one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect: str = engine.dialect.name
        super().__init__(TransactionPerCall(engine))

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for diagnostics and tests; data access goes through the areas."""
        return self._engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One unit of work for writing: committed when the block ends, rolled back on an error."""
        async with transaction(self._engine, write=True) as conn:
            yield Transaction(SharedTransaction(conn, self.dialect))

    async def close(self) -> None:
        """Release every pooled connection."""
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
