"""The engine, its transactions, and the base every data area builds on.

A data area (tenants, apps, records, ...) reaches the database only through a `Db`: `read()` and
`write()` give it a connection inside a transaction. On the store itself each call of an area
method is its own transaction; inside `Store.transaction()` every call shares the one transaction
of that unit of work, so a tick's writes commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import Column, Table, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from store.config import sqlite_file

# CLI and worker write to the same SQLite file; wait this long for the write lock, not fail.
SQLITE_BUSY_TIMEOUT_MS = 15_000

# Execution option marking a connection that will write (SQLite then begins IMMEDIATE).
_WRITE = "heartbeats_write"


def create_engine(url: str, connect_args: dict[str, Any]) -> AsyncEngine:
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
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction, committed when the block ends without an error."""
    async with engine.connect() as conn:
        if write:
            await conn.execution_options(**{_WRITE: True})
        async with conn.begin():
            yield conn


class Db(Protocol):
    """Where an area gets its connection: a new transaction per call, or a unit of work's."""

    dialect: str

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class TransactionPerCall:
    """Each `read()` / `write()` is a transaction of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect: str = engine.dialect.name

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._engine, write=False)

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._engine, write=True)


class SharedTransaction:
    """Every `read()` / `write()` runs on one connection in the unit of work's transaction."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect

    @asynccontextmanager
    async def _same(self) -> AsyncIterator[AsyncConnection]:
        yield self._conn

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._same()

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._same()


class Area:
    """Base of a data area: its Db, and the statements both backends share."""

    def __init__(self, db: Db) -> None:
        self._db = db

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def insert(self, table: Table) -> Any:
        # Both dialects offer INSERT ... ON CONFLICT with the same API.
        return pg_insert(table) if self.dialect == "postgresql" else sqlite_insert(table)

    async def insert_or_fetch(
        self,
        conn: AsyncConnection,
        table: Table,
        values: Mapping[str, Any],
        *,
        unique: Sequence[Column[Any]],
        returning: Column[Any],
    ) -> tuple[Any, bool]:
        """Insert `values` unless a row with the same `unique` columns exists: (`returning` of the
        row, whether it was inserted). A repeat writes nothing and finds the first row."""
        inserted = (
            await conn.execute(
                self.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(unique)).returning(returning)
            )
        ).scalar_one_or_none()
        if inserted is not None:
            return inserted, True
        existing = select(returning).where(*(column == values[column.name] for column in unique))
        return (await conn.execute(existing)).scalar_one(), False
