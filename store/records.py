"""App records and the kv API: one table, one truth.

A record (record_type, id) is the kv entry `{record_type}:{id}`: an app that writes campaigns
through kv sees them in its records pre-filter, with no second copy to keep in sync. Equality
filters on record data run in SQL with JSON's types (store.filters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from store.checks import check_ids, check_json, check_key, check_limit
from store.db import Area
from store.errors import StoreError
from store.filters import Scalar, check_filters, data_matches
from store.models import KvEntry, Record
from store.tables import AppRecordRow
from store.types import utcnow

app_records: Table = AppRecordRow.__table__  # type: ignore[assignment]


def record_key(record_type: str, record_id: str) -> str:
    """The kv key of a record: `{record_type}:{record_id}`."""
    if not isinstance(record_type, str) or not record_type or ":" in record_type:
        raise StoreError(f"record type must be a non-empty string without ':' (got {record_type!r})")
    if not isinstance(record_id, str) or not record_id:
        raise StoreError(f"record id must be a non-empty string (got {record_id!r})")
    return check_key(f"{record_type}:{record_id}")


def split_key(key: str) -> tuple[str, str]:
    """(record_type, record_id) of a kv key: split at the first ':'; no ':' means type ''."""
    record_type, sep, record_id = key.partition(":")
    return (record_type, record_id) if sep else ("", key)


class _AppData(Area):
    """What records and kv share: writing and deleting one key of an app."""

    async def _put(self, conn: AsyncConnection, tenant: str, app: str, key: str, data: Any) -> None:
        record_type, record_id = split_key(key)
        now = utcnow()
        insert = self.insert(app_records).values(
            tenant_id=tenant, app_id=app, key=key, record_type=record_type, record_id=record_id, data=data,
            created_at=now, updated_at=now,
        )
        insert = insert.on_conflict_do_update(
            index_elements=[app_records.c.tenant_id, app_records.c.app_id, app_records.c.key],
            set_={"data": insert.excluded.data, "updated_at": now},
        )
        await conn.execute(insert)

    async def _delete(self, tenant: str, app: str, key: str) -> bool:
        statement = delete(app_records).where(
            app_records.c.tenant_id == tenant, app_records.c.app_id == app, app_records.c.key == key
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1


class Records(_AppData):
    async def put(self, *, tenant: str, app: str, record_type: str, record_id: str, data: dict[str, Any]) -> None:
        """Create or replace the record's data (a JSON object)."""
        check_ids(tenant=tenant, app=app)
        key = record_key(record_type, record_id)
        if not isinstance(data, dict):
            raise StoreError(f"record data must be a JSON object (got {type(data).__name__})")
        check_json(data, "record data")
        async with self._db.write() as conn:
            await self._put(conn, tenant, app, key, data)

    async def get(self, *, tenant: str, app: str, record_type: str, record_id: str) -> Record | None:
        """The record, or None."""
        check_ids(tenant=tenant, app=app)
        key = record_key(record_type, record_id)
        async with self._db.read() as conn:
            row = (await conn.execute(_records_query(tenant, app).where(app_records.c.key == key))).first()
        return Record.from_row(row) if row else None

    async def list(self, *, tenant: str, app: str, record_type: str | None = None, limit: int = 100) -> list[Record]:
        """Records ordered by key, optionally of one type (kv entries included)."""
        check_ids(tenant=tenant, app=app)
        query = _records_query(tenant, app)
        if record_type is not None:
            query = query.where(app_records.c.record_type == record_type)
        query = query.order_by(app_records.c.key).limit(check_limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Record.from_row(row) for row in rows]

    async def delete(self, *, tenant: str, app: str, record_type: str, record_id: str) -> bool:
        """Delete the record; False when there was none."""
        check_ids(tenant=tenant, app=app)
        return await self._delete(tenant, app, record_key(record_type, record_id))

    async def query(
        self, *, tenant: str, app: str, record_type: str, filters: Mapping[str, Scalar], limit: int = 100
    ) -> list[Any]:
        """The data of `find`'s records."""
        return [record.data for record in await self.find(tenant=tenant, app=app, record_type=record_type,
                                                           filters=filters, limit=limit)]

    async def find(
        self, *, tenant: str, app: str, record_type: str, filters: Mapping[str, Scalar], limit: int = 100
    ) -> list[Record]:
        """The records of `record_type` whose top-level fields equal `filters`, by key.

        Matching happens in SQL with JSON's types (see store.filters): True != 1, "1" != 1,
        1 == 1.0, None matches only an explicit null. Only object-valued records match.
        """
        check_ids(tenant=tenant, app=app)
        checked = check_filters(filters)
        query = (
            select(app_records)
            .where(
                app_records.c.tenant_id == tenant,
                app_records.c.app_id == app,
                app_records.c.record_type == record_type,
                data_matches(app_records.c.data, checked, self.dialect),
            )
            .order_by(app_records.c.key)
            .limit(check_limit(limit))
        )
        async with self._db.read() as conn:
            return [Record.from_row(row) for row in (await conn.execute(query)).all()]


class Kv(_AppData):
    async def get(self, *, tenant: str, app: str, key: str) -> Any:
        """The value stored under `key`, or None."""
        check_ids(tenant=tenant, app=app)
        query = select(app_records.c.data).where(
            app_records.c.tenant_id == tenant, app_records.c.app_id == app, app_records.c.key == check_key(key)
        )
        async with self._db.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def set(self, *, tenant: str, app: str, key: str, value: Any) -> None:
        """Store any JSON value under `key` (replacing what was there)."""
        check_ids(tenant=tenant, app=app)
        key = check_key(key)
        check_json(value, f"value of {key!r}")
        async with self._db.write() as conn:
            await self._put(conn, tenant, app, key, value)

    async def delete(self, *, tenant: str, app: str, key: str) -> bool:
        """Delete `key`; False when it did not exist."""
        check_ids(tenant=tenant, app=app)
        return await self._delete(tenant, app, check_key(key))

    async def list(
        self, *, tenant: str, app: str, prefix: str = "", limit: int = 100, include_values: bool = False
    ) -> list[KvEntry]:
        """Entries whose key starts with `prefix` (literally), by key; with their values if asked."""
        check_ids(tenant=tenant, app=app)
        if not isinstance(prefix, str):
            raise StoreError("prefix must be a string")
        columns = [app_records.c.key] + ([app_records.c.data] if include_values else [])
        query = select(*columns).where(app_records.c.tenant_id == tenant, app_records.c.app_id == app)
        if prefix:
            # autoescape: '%' and '_' in the prefix match themselves, not any character.
            query = query.where(app_records.c.key.startswith(prefix, autoescape=True))
            if self.dialect == "sqlite":
                # SQLite's LIKE ignores ASCII case; PostgreSQL's does not. Make both exact.
                query = query.where(func.substr(app_records.c.key, 1, len(prefix)) == prefix)
        query = query.order_by(app_records.c.key).limit(check_limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        if include_values:
            return [KvEntry(row.key, row.data, has_value=True) for row in rows]
        return [KvEntry(row.key) for row in rows]


def _records_query(tenant: str, app: str) -> Any:
    return select(app_records).where(app_records.c.tenant_id == tenant, app_records.c.app_id == app)
