"""Alembic environment for the store.

At run time the store applies migrations itself (store.migrate.upgrade): it hands over an open
connection in `config.attributes["connection"]`, already inside a transaction that holds the
migration lock, so everything below runs in that one transaction.

Without a connection (alembic commands run from Python with `store.migrate.alembic_config()`),
it opens the database named by `-x url=...` or HEARTBEATS_DATABASE_URL; `--sql` prints the DDL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from store.config import resolve_database_url
from store.tables import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations on `connection`."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode recreates tables when needed.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def _url_from_cli() -> str | None:
    return context.get_x_argument(as_dictionary=True).get("url")


if context.is_offline_mode():
    # `alembic upgrade head --sql`: print the DDL instead of running it.
    context.configure(
        url=resolve_database_url(_url_from_cli()),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := context.config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    asyncio.run(_run_standalone(resolve_database_url(_url_from_cli())))
