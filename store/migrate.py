"""Schema migrations, applied automatically when the store is opened.

The alembic configuration is built in code (no alembic.ini at run time) and points at the
`migrations` folder shipped inside this package.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit number; every process that migrates a PostgreSQL database takes this lock first.
_PG_MIGRATION_LOCK = 0x6862_7374_6F72  # "hbstor"

# Alembic's `context` and `op` are module globals that each command points at its own run, so
# two commands that overlap in one process (threads, or coroutines on one event loop) use each
# other's connections. One command at a time per process, whatever the database.
_ALEMBIC_COMMAND_LOCK = threading.Lock()
# How often a coroutine waiting for that lock looks again (it never blocks its event loop).
_LOCK_POLL_SECONDS = 0.01


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for this package; with `connection`, env.py migrates that connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None when it has never been migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(conn: AsyncConnection) -> None:
    """Bring the database to head, inside the caller's transaction (begun as a write).

    Several processes may open the store at once (CLI, worker, a second worker). On PostgreSQL the
    transaction-scoped advisory lock makes them migrate one after the other; on SQLite the caller's
    `BEGIN IMMEDIATE` does the same. Holding that lock, a database already at head is left alone
    without starting alembic; otherwise the alembic command runs under the process-wide lock, as
    several stores may be opened at once in one process too.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    if await conn.run_sync(current_revision) == head_revision():
        return
    await _acquire_alembic_command_lock()
    try:
        await conn.run_sync(_upgrade_to_head)
    finally:
        _ALEMBIC_COMMAND_LOCK.release()


async def _acquire_alembic_command_lock() -> None:
    # The holder may be a coroutine on this very event loop, waiting for its database: blocking
    # the loop on the lock would deadlock, so poll. A cancelled waiter has taken nothing.
    while not _ALEMBIC_COMMAND_LOCK.acquire(blocking=False):
        await asyncio.sleep(_LOCK_POLL_SECONDS)


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
