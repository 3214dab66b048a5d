"""The data store: tenants, apps, app records and kv, agent memory, conversations, receipts, outbox.

Every method is keyword-only and takes `tenant=` (and `app=` where the data belongs to an app);
every statement filters on them, so one tenant can never read or change another's rows.
Dicts returned here are JSON-ready (times as ISO 8601 UTC with `Z`); tenants and apps come back
as frozen dataclasses with aware datetimes.

    store = await open_store()          # HEARTBEATS_DATABASE_URL, or .data/heartbeats.db
    await store.upsert_tenant(tenant="acme", timezone="Europe/Berlin")
    await store.kv_set(tenant="acme", app="crm", key="lead:42", value={"status": "open"})
    await store.close()
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, case, delete, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from manifest.ids import id_problem, parse_workflow_id
from store.config import resolve_database_url, sqlite_file
from store.constants import CONVERSATION_MODES, OUTCOMES, PROVIDERS
from store.errors import NotFoundError, StoreError
from store.filters import Scalar, check_filters, data_matches
from store.migrate import upgrade
from store.models import App, Tenant
from store.tables import (
    AppRecordRow,
    AppRow,
    ConversationRow,
    MemoryRow,
    MessageRow,
    OutboxRow,
    ReceiptRow,
    TenantRow,
)
from store.types import UTCDateTime, iso_z, utcnow

tenants: Table = TenantRow.__table__  # type: ignore[assignment]
apps: Table = AppRow.__table__  # type: ignore[assignment]
app_records: Table = AppRecordRow.__table__  # type: ignore[assignment]
memory: Table = MemoryRow.__table__  # type: ignore[assignment]
conversations: Table = ConversationRow.__table__  # type: ignore[assignment]
messages: Table = MessageRow.__table__  # type: ignore[assignment]
receipts: Table = ReceiptRow.__table__  # type: ignore[assignment]
outbox: Table = OutboxRow.__table__  # type: ignore[assignment]

MAX_KEY_LENGTH = 512
MAX_ERROR_LENGTH = 8000  # a receipt keeps the start of a long error (a whole traceback is noise)
MAX_REPLY_EXCERPT = 1000  # a receipt keeps the start of the agent's reply; the thread has all of it

# CLI and worker write to the same SQLite file; wait this long for the write lock, not fail.
SQLITE_BUSY_TIMEOUT_MS = 15_000

# Execution option marking a connection that will write (SQLite then begins IMMEDIATE).
_WRITE = "heartbeats_write"


async def open_store(
    url: str | None = None, *, connect_args: dict[str, Any] | None = None
) -> Store:
    """Open the store and bring its schema to the newest migration.

    `url` defaults to HEARTBEATS_DATABASE_URL, else the SQLite file `.data/heartbeats.db` under the
    current directory (the folder is created). `connect_args` go to the driver, e.g.
    `{"server_settings": {"search_path": "myschema"}}` for asyncpg.
    """
    engine = _create_engine(resolve_database_url(url), connect_args or {})
    try:
        async with _transaction(engine, write=True) as conn:
            await upgrade(conn)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine)


def _create_engine(url: str, connect_args: dict[str, Any]) -> AsyncEngine:
    options: dict[str, Any] = {
        # NaN/Infinity are not JSON; PostgreSQL would refuse them, so SQLite must too.
        "json_serializer": lambda value: json.dumps(value, allow_nan=False),
        "connect_args": connect_args,
    }
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif is_sqlite:
        # Each connection to an in-memory database sees its own empty database: share one.
        options["poolclass"] = StaticPool
    else:
        options["pool_pre_ping"] = True  # a worker outlives server restarts
    engine = create_async_engine(url, **options)
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the driver (see _on_begin); it would otherwise begin lazily.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer, so the CLI can read while the worker writes.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY (the
        # busy timeout does not apply) when another process wrote in between; writers therefore
        # take the write lock up front and wait for it instead.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def _transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if write:
            await conn.execution_options(**{_WRITE: True})
        async with conn.begin():
            yield conn


class Store:
    """Data access for the platform. Create it with `open_store()`; `close()` when done."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect: str = engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for diagnostics and tests; data access goes through methods."""
        return self._engine

    async def close(self) -> None:
        """Release every pooled connection."""
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return _transaction(self._engine, write=False)

    def _write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return _transaction(self._engine, write=True)

    def _insert(self, table: Table) -> Any:
        # Both dialects offer INSERT ... ON CONFLICT with the same API.
        return pg_insert(table) if self.dialect == "postgresql" else sqlite_insert(table)

    # ----------------------------------------------------------------------------- tenants

    async def upsert_tenant(
        self,
        *,
        tenant: str,
        timezone: str | None = None,
        provider: str | None = None,
        model_cheap: str | None = None,
        model_standard: str | None = None,
        model_premium: str | None = None,
    ) -> Tenant:
        """Create the tenant or change it; only the fields given (not None) change."""
        _check_id(tenant, "tenant id")
        changes: dict[str, Any] = {}
        if timezone is not None:
            changes["timezone"] = _check_timezone(timezone)
        if provider is not None:
            changes["llm_provider"] = _check_choice(provider, PROVIDERS, "provider")
        for column, value in (
            ("model_cheap", model_cheap),
            ("model_standard", model_standard),
            ("model_premium", model_premium),
        ):
            if value is not None:
                changes[column] = _check_text(value, column, max_length=200)
        now = utcnow()
        insert = self._insert(tenants).values(id=tenant, created_at=now, updated_at=now, **changes)
        insert = insert.on_conflict_do_update(
            index_elements=[tenants.c.id], set_={**changes, "updated_at": now}
        )
        async with self._write() as conn:
            await conn.execute(insert)
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant))).one()
        return Tenant.from_row(row)

    async def get_tenant(self, *, tenant: str) -> Tenant | None:
        """The tenant, or None when it was never set."""
        _check_id(tenant, "tenant id")
        async with self._read() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant))).first()
        return Tenant.from_row(row) if row else None

    # -------------------------------------------------------------------------------- apps

    async def record_app(
        self,
        *,
        tenant: str,
        app: str,
        name: str,
        version: str,
        manifest: dict[str, Any],
        manifest_hash: str,
    ) -> App:
        """Record that `app` is installed for `tenant` from `manifest` (insert or update)."""
        _check_ids(tenant=tenant, app=app)
        if not isinstance(manifest, dict):
            raise StoreError("manifest must be a dict (the parsed manifest)")
        _check_json(manifest, "manifest")
        values = {
            "name": _check_text(name, "app name", max_length=200),
            "version": _check_text(version, "app version", max_length=64),
            "manifest": manifest,
            "manifest_hash": _check_text(manifest_hash, "manifest hash", max_length=128),
        }
        now = utcnow()
        insert = self._insert(apps).values(
            tenant_id=tenant,
            app_id=app,
            status="installed",
            installed_at=now,
            updated_at=now,
            **values,
        )
        # A reinstall after an uninstall is a new installation; an update in place is not.
        reinstalled_at = case(
            (apps.c.status == "uninstalled", bindparam("reinstalled_at", now, type_=UTCDateTime)),
            else_=apps.c.installed_at,
        )
        insert = insert.on_conflict_do_update(
            index_elements=[apps.c.tenant_id, apps.c.app_id],
            set_={
                **values,
                "status": "installed",
                "installed_at": reinstalled_at,
                "updated_at": now,
            },
        )
        async with self._write() as conn:
            await conn.execute(insert)
            row = (await conn.execute(_app_query(tenant, app))).one()
        return App.from_row(row)

    async def get_app(self, *, tenant: str, app: str) -> App | None:
        """The app as recorded (installed or uninstalled), or None."""
        _check_ids(tenant=tenant, app=app)
        async with self._read() as conn:
            row = (await conn.execute(_app_query(tenant, app))).first()
        return App.from_row(row) if row else None

    async def get_apps(self, *, tenant: str, app_ids: list[str]) -> dict[str, App]:
        """The recorded apps among `app_ids` (installed or uninstalled), by id; absent ones are left
        out. One read per APP_READ_BATCH ids, for planning a sync of many apps."""
        _check_id(tenant, "tenant id")
        for app in app_ids:
            _check_id(app, "app id")
        found: dict[str, App] = {}
        unique = sorted(set(app_ids))
        async with self._read() as conn:
            for start in range(0, len(unique), APP_READ_BATCH):
                batch = unique[start : start + APP_READ_BATCH]
                query = select(apps).where(apps.c.tenant_id == tenant, apps.c.app_id.in_(batch))
                found.update((row.app_id, App.from_row(row)) for row in (await conn.execute(query)).all())
        return found

    async def list_apps(self, *, tenant: str, include_uninstalled: bool = False) -> list[App]:
        """The tenant's apps ordered by id; installed ones only unless asked otherwise."""
        _check_id(tenant, "tenant id")
        query = select(apps).where(apps.c.tenant_id == tenant).order_by(apps.c.app_id)
        if not include_uninstalled:
            query = query.where(apps.c.status == "installed")
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [App.from_row(row) for row in rows]

    async def mark_app_uninstalled(self, *, tenant: str, app: str) -> bool:
        """Mark the app uninstalled (its data stays); False when it was not installed."""
        _check_ids(tenant=tenant, app=app)
        statement = (
            update(apps)
            .where(apps.c.tenant_id == tenant, apps.c.app_id == app, apps.c.status == "installed")
            .values(status="uninstalled", updated_at=utcnow())
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    # ------------------------------------------------------------------------ app records
    # A record (record_type, id) is the kv entry `{record_type}:{id}`: one table, one truth.

    async def put_record(
        self, *, tenant: str, app: str, record_type: str, record_id: str, data: dict[str, Any]
    ) -> None:
        """Create or replace the record's data (a JSON object)."""
        _check_ids(tenant=tenant, app=app)
        key = record_key(record_type, record_id)
        if not isinstance(data, dict):
            raise StoreError(f"record data must be a JSON object (got {type(data).__name__})")
        _check_json(data, "record data")
        async with self._write() as conn:
            await self._put(conn, tenant, app, key, data)

    async def get_record(
        self, *, tenant: str, app: str, record_type: str, record_id: str
    ) -> dict[str, Any] | None:
        """The record as {"record_type", "id", "data", "created_at", "updated_at"}, or None."""
        _check_ids(tenant=tenant, app=app)
        key = record_key(record_type, record_id)
        async with self._read() as conn:
            row = (
                await conn.execute(_records_query(tenant, app).where(app_records.c.key == key))
            ).first()
        return _record_dict(row) if row else None

    async def list_records(
        self, *, tenant: str, app: str, record_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Records ordered by key, optionally of one type (kv entries included)."""
        _check_ids(tenant=tenant, app=app)
        query = _records_query(tenant, app)
        if record_type is not None:
            query = query.where(app_records.c.record_type == record_type)
        query = query.order_by(app_records.c.key).limit(_check_limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_record_dict(row) for row in rows]

    async def delete_record(
        self, *, tenant: str, app: str, record_type: str, record_id: str
    ) -> bool:
        """Delete the record; False when there was none."""
        _check_ids(tenant=tenant, app=app)
        return await self._delete(tenant, app, record_key(record_type, record_id))

    async def query_records(
        self,
        *,
        tenant: str,
        app: str,
        record_type: str,
        filters: Mapping[str, Scalar],
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The data of records of `record_type` whose top-level fields equal `filters`, by key.

        Matching happens in SQL with JSON's types (see store.filters): True != 1, "1" != 1,
        1 == 1.0, None matches only an explicit null. Only object-valued records match.
        """
        _check_ids(tenant=tenant, app=app)
        checked = check_filters(filters)
        query = (
            select(app_records.c.data)
            .where(
                app_records.c.tenant_id == tenant,
                app_records.c.app_id == app,
                app_records.c.record_type == record_type,
                data_matches(app_records.c.data, checked, self.dialect),
            )
            .order_by(app_records.c.key)
            .limit(_check_limit(limit))
        )
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars())

    # --------------------------------------------------------------------------------- kv

    async def kv_get(self, *, tenant: str, app: str, key: str) -> Any:
        """The value stored under `key`, or None."""
        _check_ids(tenant=tenant, app=app)
        query = select(app_records.c.data).where(
            app_records.c.tenant_id == tenant,
            app_records.c.app_id == app,
            app_records.c.key == _check_key(key),
        )
        async with self._read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def kv_set(self, *, tenant: str, app: str, key: str, value: Any) -> None:
        """Store any JSON value under `key` (replacing what was there)."""
        _check_ids(tenant=tenant, app=app)
        key = _check_key(key)
        _check_json(value, f"value of {key!r}")
        async with self._write() as conn:
            await self._put(conn, tenant, app, key, value)

    async def kv_delete(self, *, tenant: str, app: str, key: str) -> bool:
        """Delete `key`; False when it did not exist."""
        _check_ids(tenant=tenant, app=app)
        return await self._delete(tenant, app, _check_key(key))

    async def kv_list(
        self,
        *,
        tenant: str,
        app: str,
        prefix: str = "",
        limit: int = 100,
        include_values: bool = False,
    ) -> list[dict[str, Any]]:
        """Entries whose key starts with `prefix` (literally), by key: [{"key", "value"?}]."""
        _check_ids(tenant=tenant, app=app)
        if not isinstance(prefix, str):
            raise StoreError("prefix must be a string")
        columns = [app_records.c.key] + ([app_records.c.data] if include_values else [])
        query = select(*columns).where(
            app_records.c.tenant_id == tenant, app_records.c.app_id == app
        )
        if prefix:
            # autoescape: '%' and '_' in the prefix match themselves, not any character.
            query = query.where(app_records.c.key.startswith(prefix, autoescape=True))
            if self.dialect == "sqlite":
                # SQLite's LIKE ignores ASCII case; PostgreSQL's does not. Make both exact.
                query = query.where(func.substr(app_records.c.key, 1, len(prefix)) == prefix)
        query = query.order_by(app_records.c.key).limit(_check_limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        if include_values:
            return [{"key": row.key, "value": row.data} for row in rows]
        return [{"key": row.key} for row in rows]

    async def _put(self, conn: AsyncConnection, tenant: str, app: str, key: str, data: Any) -> None:
        record_type, record_id = split_key(key)
        now = utcnow()
        insert = self._insert(app_records).values(
            tenant_id=tenant,
            app_id=app,
            key=key,
            record_type=record_type,
            record_id=record_id,
            data=data,
            created_at=now,
            updated_at=now,
        )
        insert = insert.on_conflict_do_update(
            index_elements=[app_records.c.tenant_id, app_records.c.app_id, app_records.c.key],
            set_={"data": insert.excluded.data, "updated_at": now},
        )
        await conn.execute(insert)

    async def _delete(self, tenant: str, app: str, key: str) -> bool:
        statement = delete(app_records).where(
            app_records.c.tenant_id == tenant,
            app_records.c.app_id == app,
            app_records.c.key == key,
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    # ---------------------------------------------------------------------- agent memory

    async def add_memory(
        self,
        *,
        tenant: str,
        app: str,
        agent: str,
        kind: str,
        content: str,
        data: Any = None,
        due_at: datetime | None = None,
        expires_at: datetime | None = None,
        dedupe_key: str | None = None,
    ) -> int:
        """Write a memory entry for the agent; returns its id.

        With `dedupe_key` the write is idempotent: when the agent already has an entry with that key
        (a retried writer), nothing is written and the existing entry's id is returned.
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        values = {
            "tenant_id": tenant,
            "app_id": app,
            "agent_id": agent,
            "kind": _check_text(kind, "memory kind", max_length=64),
            "content": _check_text(content, "memory content", allow_empty=True),
            "data": _check_json(data, "memory data"),
            "due_at": _check_aware(due_at, "due_at"),
            "expires_at": _check_aware(expires_at, "expires_at"),
            "created_at": utcnow(),
            "dedupe_key": _optional_text(dedupe_key, "dedupe_key", max_length=600),
        }
        if dedupe_key is None:
            async with self._write() as conn:
                result = await conn.execute(memory.insert().values(**values))
            return int(result.inserted_primary_key[0])
        insert = (
            self._insert(memory)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[
                    memory.c.tenant_id,
                    memory.c.app_id,
                    memory.c.agent_id,
                    memory.c.dedupe_key,
                ]
            )
            .returning(memory.c.id)
        )
        existing = select(memory.c.id).where(
            memory.c.tenant_id == tenant,
            memory.c.app_id == app,
            memory.c.agent_id == agent,
            memory.c.dedupe_key == dedupe_key,
        )
        async with self._write() as conn:
            inserted = (await conn.execute(insert)).scalar_one_or_none()
            if inserted is None:
                inserted = (await conn.execute(existing)).scalar_one()
        return int(inserted)

    async def query_memory(
        self,
        *,
        tenant: str,
        app: str,
        agent: str,
        kind: str | None = None,
        now: datetime,
        limit: int = 50,
        due_only: bool = False,
        include_done: bool = True,
        data_equals: Mapping[str, Scalar] | None = None,
    ) -> list[dict[str, Any]]:
        """The agent's memory entries not expired at `now`, newest first.

        `due_only`: only entries due at `now` (`due_at <= now`, or no due time at all), ordered by
        due time, oldest first (the most overdue first). `include_done=False` leaves out entries
        marked done. `data_equals`: equality filters on top-level fields of `data` (as records).
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        now = _check_aware(now, "now")  # type: ignore[assignment]
        query = select(memory).where(
            memory.c.tenant_id == tenant,
            memory.c.app_id == app,
            memory.c.agent_id == agent,
            (memory.c.expires_at.is_(None)) | (memory.c.expires_at > now),
        )
        if kind is not None:
            query = query.where(memory.c.kind == kind)
        if not include_done:
            query = query.where(memory.c.done_at.is_(None))
        if data_equals:
            query = query.where(data_matches(memory.c.data, check_filters(data_equals), self.dialect))
        if due_only:
            query = query.where((memory.c.due_at.is_(None)) | (memory.c.due_at <= now)).order_by(
                memory.c.due_at.asc().nulls_first(), memory.c.id.asc()
            )
        else:
            query = query.order_by(memory.c.created_at.desc(), memory.c.id.desc())
        query = query.limit(_check_limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "id": row.id,
                "kind": row.kind,
                "content": row.content,
                "data": row.data,
                "due_at": iso_z(row.due_at),
                "expires_at": iso_z(row.expires_at),
                "created_at": iso_z(row.created_at),
                "done_at": iso_z(row.done_at),
            }
            for row in rows
        ]

    async def claim_memory(
        self, *, tenant: str, app: str, agent: str, ids: list[int], claim: str
    ) -> int:
        """Mark the agent's open entries `ids` as fed to the tick `claim`; returns how many.

        A later claim replaces an earlier one (the earlier tick failed or never completed); done
        entries are left alone. See complete_claimed_memory.
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        claim = _check_text(claim, "claim", max_length=520)
        ids = _check_memory_ids(ids)
        if not ids:
            return 0
        statement = (
            update(memory)
            .where(
                memory.c.tenant_id == tenant,
                memory.c.app_id == app,
                memory.c.agent_id == agent,
                memory.c.id.in_(ids),
                memory.c.done_at.is_(None),
            )
            .values(claimed_by=claim)
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def complete_claimed_memory(
        self, *, tenant: str, app: str, agent: str, claim: str, at: datetime
    ) -> int:
        """Mark done, at `at`, the agent's open entries claimed by `claim`; returns how many.

        Idempotent: a second call finds them done and changes nothing.
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        claim = _check_text(claim, "claim", max_length=520)
        statement = (
            update(memory)
            .where(
                memory.c.tenant_id == tenant,
                memory.c.app_id == app,
                memory.c.agent_id == agent,
                memory.c.claimed_by == claim,
                memory.c.done_at.is_(None),
            )
            .values(done_at=_check_aware(at, "at"))
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def mark_memory_done(
        self, *, tenant: str, app: str, agent: str, ids: list[int], at: datetime
    ) -> list[int]:
        """Mark the agent's entries `ids` done at `at` (done ones keep their time).

        Returns the ids that belong to this agent (done now or before); others are ignored.
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        ids = _check_memory_ids(ids)
        at = _check_aware(at, "at")  # type: ignore[assignment]
        if not ids:
            return []
        mine = (
            memory.c.tenant_id == tenant,
            memory.c.app_id == app,
            memory.c.agent_id == agent,
            memory.c.id.in_(ids),
        )
        async with self._write() as conn:
            await conn.execute(update(memory).where(*mine, memory.c.done_at.is_(None)).values(done_at=at))
            found = (await conn.execute(select(memory.c.id).where(*mine).order_by(memory.c.id))).scalars()
            return [int(entry_id) for entry_id in found]

    # --------------------------------------------------------------------- conversations

    async def conversation_id(self, *, tenant: str, app: str, agent: str, mode: str) -> str:
        """The agent's conversation id in `mode` ('dedicated' | 'main'), created on first use."""
        _check_ids(tenant=tenant, app=app, agent=agent)
        _check_choice(mode, CONVERSATION_MODES, "conversation mode")
        query = select(conversations.c.id).where(
            conversations.c.tenant_id == tenant,
            conversations.c.app_id == app,
            conversations.c.agent_id == agent,
            conversations.c.mode == mode,
        )
        async with self._read() as conn:
            existing = (await conn.execute(query)).scalar_one_or_none()
        if existing is not None:
            return existing
        # Two processes may race to create it: the unique constraint picks one, both read it back.
        insert = (
            self._insert(conversations)
            .values(
                id=str(uuid.uuid4()),
                tenant_id=tenant,
                app_id=app,
                agent_id=agent,
                mode=mode,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(
                index_elements=[
                    conversations.c.tenant_id,
                    conversations.c.app_id,
                    conversations.c.agent_id,
                    conversations.c.mode,
                ]
            )
        )
        async with self._write() as conn:
            await conn.execute(insert)
            return (await conn.execute(query)).scalar_one()

    async def append_message(
        self, *, tenant: str, conversation_id: str, role: str, content: str
    ) -> int:
        """Append a message to one of the tenant's conversations; returns the message id."""
        _check_id(tenant, "tenant id")
        role = _check_text(role, "message role", max_length=32)
        content = _check_text(content, "message content", allow_empty=True)
        owned = select(conversations.c.id).where(
            conversations.c.id == conversation_id, conversations.c.tenant_id == tenant
        )
        async with self._write() as conn:
            if (await conn.execute(owned)).first() is None:
                raise NotFoundError(f"tenant {tenant!r} has no conversation {conversation_id!r}")
            result = await conn.execute(
                messages.insert().values(
                    tenant_id=tenant,
                    conversation_id=conversation_id,
                    role=role,
                    content=content,
                    created_at=utcnow(),
                )
            )
        return int(result.inserted_primary_key[0])

    async def list_messages(
        self, *, tenant: str, conversation_id: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest `limit` messages, oldest first (the order a prompt wants them in)."""
        _check_id(tenant, "tenant id")
        query = (
            select(messages)
            .where(messages.c.tenant_id == tenant, messages.c.conversation_id == conversation_id)
            .order_by(messages.c.id.desc())
            .limit(_check_limit(limit))
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "id": row.id,
                "role": row.role,
                "content": row.content,
                "created_at": iso_z(row.created_at),
            }
            for row in reversed(rows)
        ]

    # ---------------------------------------------------------------------------- outbox

    async def queue_email(
        self,
        *,
        tenant: str,
        app: str,
        agent: str,
        idempotency_key: str,
        to: str,
        subject: str,
        body: str,
    ) -> tuple[int, bool]:
        """Queue an email in the outbox, once per (tenant, app, idempotency_key).

        Returns (outbox id, created). A repeat with the same key writes nothing (not even a changed
        body) and returns the first row's id with created False.
        """
        _check_ids(tenant=tenant, app=app, agent=agent)
        key = _check_text(idempotency_key, "idempotency key", max_length=600)
        insert = (
            self._insert(outbox)
            .values(
                tenant_id=tenant,
                app_id=app,
                agent_id=agent,
                idempotency_key=key,
                to_address=_check_text(to, "to", max_length=320),
                subject=_check_text(subject, "subject", allow_empty=True),
                body=_check_text(body, "body", allow_empty=True),
                status="queued",
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(
                index_elements=[outbox.c.tenant_id, outbox.c.app_id, outbox.c.idempotency_key]
            )
            .returning(outbox.c.id)
        )
        existing = select(outbox.c.id).where(
            outbox.c.tenant_id == tenant, outbox.c.app_id == app, outbox.c.idempotency_key == key
        )
        async with self._write() as conn:
            inserted = (await conn.execute(insert)).scalar_one_or_none()
            if inserted is not None:
                return int(inserted), True
            return int((await conn.execute(existing)).scalar_one()), False

    async def list_outbox(
        self, *, tenant: str, app: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The tenant's queued emails (optionally of one app), oldest first."""
        _check_id(tenant, "tenant id")
        query = select(outbox).where(outbox.c.tenant_id == tenant)
        if app is not None:
            _check_id(app, "app id")
            query = query.where(outbox.c.app_id == app)
        query = query.order_by(outbox.c.id).limit(_check_limit(limit))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "id": row.id,
                "app": row.app_id,
                "agent": row.agent_id,
                "idempotency_key": row.idempotency_key,
                "to": row.to_address,
                "subject": row.subject,
                "body": row.body,
                "status": row.status,
                "created_at": iso_z(row.created_at),
            }
            for row in rows
        ]

    # -------------------------------------------------------------------------- receipts

    async def add_receipt(
        self,
        *,
        tenant: str,
        heartbeat_id: str,
        tick_id: str,
        at: datetime,
        trigger: str,
        outcome: str,
        reason: str | None = None,
        rows: int = 0,
        escalated: bool = False,
        provider: str | None = None,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        duration_ms: int = 0,
        error: str | None = None,
        reply: str | None = None,
        app_id: str | None = None,
        agent_id: str | None = None,
        slug: str | None = None,
    ) -> bool:
        """Write the receipt of one tick; False when that tick's receipt already exists.

        Idempotent by (heartbeat_id, tick_id), so a retried activity never writes it twice.
        app_id, agent_id and slug come from the heartbeat id; when given they must agree with it.
        `reply` is what the agent said; longer than MAX_REPLY_EXCERPT characters it is cut, with "…".
        """
        _check_id(tenant, "tenant id")
        try:
            parts = dict(zip(("tenant", "app", "agent", "slug"), parse_workflow_id(heartbeat_id), strict=True))
        except ValueError:
            raise StoreError(
                f"heartbeat id must look like heartbeat:TENANT:APP:AGENT:SLUG (got {heartbeat_id!r})"
            ) from None
        if parts["tenant"] != tenant:
            raise StoreError(f"heartbeat {heartbeat_id!r} does not belong to tenant {tenant!r}")
        for given, name in ((app_id, "app"), (agent_id, "agent"), (slug, "slug")):
            if given is not None and given != parts[name]:
                raise StoreError(f"{name} {given!r} does not match heartbeat id {heartbeat_id!r}")
        if isinstance(error, str) and len(error) > MAX_ERROR_LENGTH:
            error = error[:MAX_ERROR_LENGTH] + " [truncated]"
        if isinstance(reply, str) and len(reply) > MAX_REPLY_EXCERPT:
            reply = reply[: MAX_REPLY_EXCERPT - 1] + "…"
        values = {
            "tenant_id": tenant,
            "heartbeat_id": heartbeat_id,
            "tick_id": _check_text(tick_id, "tick_id", max_length=200),
            "app_id": parts["app"],
            "agent_id": parts["agent"],
            "slug": parts["slug"],
            "at": _check_aware(at, "at"),
            "trigger": _check_text(trigger, "trigger", max_length=32),
            "outcome": _check_choice(outcome, OUTCOMES, "outcome"),
            "reason": _optional_text(reason, "reason", max_length=64),
            "rows": _check_count(rows, "rows"),
            "escalated": _check_bool(escalated, "escalated"),
            "provider": _optional_text(provider, "provider", max_length=32),
            "model": _optional_text(model, "model", max_length=200),
            "tokens_in": _check_count(tokens_in, "tokens_in"),
            "tokens_out": _check_count(tokens_out, "tokens_out"),
            "duration_ms": _check_count(duration_ms, "duration_ms"),
            "error": _optional_text(error, "error"),
            "reply": _optional_text(reply, "reply"),
        }
        insert = (
            self._insert(receipts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[receipts.c.heartbeat_id, receipts.c.tick_id])
            .returning(receipts.c.id)
        )
        async with self._write() as conn:
            inserted = (await conn.execute(insert)).first()
        return inserted is not None

    async def list_receipts(
        self, *, tenant: str, heartbeat_id: str, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The heartbeat's receipts, newest first, with the fields of DESIGN.md "Tick receipts"."""
        _check_id(tenant, "tenant id")
        query = (
            select(receipts)
            .where(receipts.c.tenant_id == tenant, receipts.c.heartbeat_id == heartbeat_id)
            .order_by(receipts.c.at.desc(), receipts.c.id.desc())
            .limit(_check_limit(limit))
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_receipt_dict(row) for row in rows]


# ------------------------------------------------------------------------------ keys and ids


def record_key(record_type: str, record_id: str) -> str:
    """The kv key of a record: `{record_type}:{record_id}`."""
    if not isinstance(record_type, str) or not record_type or ":" in record_type:
        raise StoreError(
            f"record type must be a non-empty string without ':' (got {record_type!r})"
        )
    if not isinstance(record_id, str) or not record_id:
        raise StoreError(f"record id must be a non-empty string (got {record_id!r})")
    return _check_key(f"{record_type}:{record_id}")


def split_key(key: str) -> tuple[str, str]:
    """(record_type, record_id) of a kv key: split at the first ':'; no ':' means type ''."""
    record_type, sep, record_id = key.partition(":")
    return (record_type, record_id) if sep else ("", key)


# --------------------------------------------------------------------------------- queries


# Ids per `IN (...)` read: well under SQLite's and asyncpg's bound-parameter limits.
APP_READ_BATCH = 500


def _app_query(tenant: str, app: str) -> Any:
    return select(apps).where(apps.c.tenant_id == tenant, apps.c.app_id == app)


def _records_query(tenant: str, app: str) -> Any:
    return select(app_records).where(app_records.c.tenant_id == tenant, app_records.c.app_id == app)


def _record_dict(row: Any) -> dict[str, Any]:
    return {
        "record_type": row.record_type,
        "id": row.record_id,
        "data": row.data,
        "created_at": iso_z(row.created_at),
        "updated_at": iso_z(row.updated_at),
    }


def _receipt_dict(row: Any) -> dict[str, Any]:
    return {
        "tick_id": row.tick_id,
        "at": iso_z(row.at),
        "trigger": row.trigger,
        "outcome": row.outcome,
        "reason": row.reason,
        "rows": row.rows,
        "escalated": row.escalated,
        "provider": row.provider,
        "model": row.model,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "duration_ms": row.duration_ms,
        "error": row.error,
        "reply": row.reply,
    }


# ------------------------------------------------------------------------------ validation
# Checked here, before SQL, so callers get one clear StoreError instead of a driver error.


def _check_id(value: object, what: str) -> str:
    problem = id_problem(value)
    if problem:
        raise StoreError(f"{what} {problem}")
    return value  # type: ignore[return-value]


def _check_ids(**ids: str) -> None:
    for what, value in ids.items():
        _check_id(value, f"{what} id")


def _check_timezone(name: object) -> str:
    if isinstance(name, str) and name.strip():
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise StoreError(
        f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
    )


def _check_choice(value: object, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise StoreError(f"{what} must be one of {', '.join(sorted(allowed))} (got {value!r})")
    return value  # type: ignore[return-value]


def _check_text(
    value: object, what: str, *, max_length: int | None = None, allow_empty: bool = False
) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string (got {type(value).__name__})")
    if not allow_empty and not value.strip():
        raise StoreError(f"{what} must not be empty")
    if max_length is not None and len(value) > max_length:
        raise StoreError(f"{what} must be at most {max_length} characters (got {len(value)})")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; refuse it on every backend alike
        raise StoreError(f"{what} must not contain NUL characters")
    return value


def _optional_text(value: object, what: str, *, max_length: int | None = None) -> str | None:
    return (
        None if value is None else _check_text(value, what, max_length=max_length, allow_empty=True)
    )


def _check_key(key: object) -> str:
    return _check_text(key, "key", max_length=MAX_KEY_LENGTH)


def _check_json(value: Any, what: str) -> Any:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:  # PostgreSQL jsonb cannot hold NUL; refuse it on every backend alike
        raise StoreError(f"{what} must not contain NUL characters")
    return value


def _check_aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise StoreError(f"{what} must be a datetime (got {type(value).__name__})")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"limit must be a positive integer (got {limit!r})")
    return limit


def _check_memory_ids(ids: object) -> list[int]:
    if not isinstance(ids, list | tuple) or any(
        isinstance(i, bool) or not isinstance(i, int) for i in ids
    ):
        raise StoreError(f"memory ids must be a list of integers (got {ids!r})")
    return sorted(set(ids))


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{what} must be a non-negative integer (got {value!r})")
    return value


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise StoreError(f"{what} must be true or false (got {value!r})")
    return value
