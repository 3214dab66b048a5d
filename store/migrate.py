"""Schema migrations, applied automatically when the store is opened.

The alembic configuration is built in code (no alembic.ini at run time) and points at the
`migrations` folder shipped inside this package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit number; every process that migrates a PostgreSQL database takes this lock first.
_PG_MIGRATION_LOCK = 0x6862_7374_6F72  # "hbstor"


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for this package; with `connection`, env.py migrates that connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(connection: Connection) -> None:
    """Bring the database to head, inside the caller's transaction.

    Several processes may open the store at once (CLI, worker, a second worker). On PostgreSQL the
    transaction-scoped advisory lock makes them migrate one after the other; the later ones find
    the database at head and do nothing. On SQLite the caller's `BEGIN IMMEDIATE` does the same.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")
