"""Migrations applied by `open_store`, when several stores are opened at once in one process.

Alembic's `context` and `op` are module-level proxies that each alembic command installs for
its run, so two runs that overlap in one process (coroutines on one event loop, or threads)
would send one database's DDL to another's connection. Opening stores concurrently must still
leave every database exactly at head.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import store.migrate
from store import Store, open_store
from store.config import normalize_database_url
from store.migrate import head_revision
from store.tables import Base

if TYPE_CHECKING:
    from conftest import Database

ROUNDS = 3
FRESH_SQLITE_PER_ROUND = 12
THREADS = 6
# Only a guard against hanging forever: a thread whose loop waits on another loop's connection
# never wakes up. Opening takes well under a second; this bounds nothing that passes.
HANG_GUARD_SECONDS = 60

EXPECTED_TABLES = set(Base.metadata.tables) | {"alembic_version"}


async def _revision_and_tables(url: str, connect_args: dict | None = None) -> tuple[str | None, set[str]]:
    engine = create_async_engine(normalize_database_url(url), connect_args=connect_args or {})
    try:
        async with engine.connect() as conn:

            def read(sync_conn) -> tuple[str | None, set[str]]:
                revision = MigrationContext.configure(sync_conn).get_current_revision()
                return revision, set(inspect(sync_conn).get_table_names())

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def _close_all(results: list[Store | BaseException]) -> None:
    for result in results:
        if isinstance(result, Store):
            await result.close()


async def test_concurrent_first_opens_of_different_databases_all_reach_head(
    database: Database, tmp_path: Path
) -> None:
    # Each round: the test database (fresh in the first round, at head afterwards) twice, and a
    # dozen fresh SQLite files, all opened at once on one event loop.
    head = head_revision()
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        sqlite_urls = [f"sqlite:///{folder / f'db{i}.db'}" for i in range(FRESH_SQLITE_PER_ROUND)]
        results = await asyncio.gather(
            database.open(),
            *(open_store(url) for url in sqlite_urls),
            database.open(),
            return_exceptions=True,
        )
        await _close_all(results)
        failures = [repr(result) for result in results if not isinstance(result, Store)]
        assert failures == [], f"round {round_}: {len(failures)} of {len(results)} opens failed"

        assert await _revision_and_tables(database.url, database.connect_args) == (head, EXPECTED_TABLES)
        for url in sqlite_urls:
            assert await _revision_and_tables(url) == (head, EXPECTED_TABLES), url


async def test_first_opens_in_several_threads_all_reach_head(tmp_path: Path) -> None:
    # CLI commands run from worker threads (each with its own event loop) share the process too.
    start = threading.Barrier(THREADS)
    errors: list[str] = []

    def open_two(index: int) -> None:
        async def main() -> None:
            urls = [f"sqlite:///{tmp_path / f't{index}-{n}.db'}" for n in range(2)]
            start.wait()
            opening = asyncio.gather(*(open_store(url) for url in urls), return_exceptions=True)
            try:
                results = await asyncio.wait_for(opening, HANG_GUARD_SECONDS)
            except TimeoutError:
                errors.append(f"thread {index}: opening did not finish")
                return
            await _close_all(results)
            errors.extend(repr(result) for result in results if not isinstance(result, Store))

        asyncio.run(main())

    def run_threads() -> list[int]:
        threads = [threading.Thread(target=open_two, args=(i,), daemon=True) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD_SECONDS)
        return [i for i, thread in enumerate(threads) if thread.is_alive()]

    stuck = await asyncio.to_thread(run_threads)
    assert (stuck, errors) == ([], [])
    paths = sorted(tmp_path.glob("t*.db"))
    assert len(paths) == THREADS * 2
    for path in paths:
        assert await _revision_and_tables(f"sqlite:///{path}") == (head_revision(), EXPECTED_TABLES), path


async def test_a_database_at_head_is_opened_without_running_alembic(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await database.open()
    await first.tenants.upsert(tenant="acme")
    await first.close()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(store.migrate.command, "upgrade", refuse)
    again = await database.open()
    try:
        assert await again.tenants.get(tenant="acme") is not None
    finally:
        await again.close()


async def test_concurrent_first_opens_of_one_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """The first connection switches a new file to WAL, which needs the file to itself for a moment
    that the busy timeout does not cover; openers that find it locked try again."""
    for round_number in range(60):
        url = f"sqlite:///{tmp_path / f'new{round_number}.db'}"
        opened = await asyncio.gather(*(open_store(url) for _ in range(4)), return_exceptions=True)
        failures = [result for result in opened if isinstance(result, BaseException)]
        for result in opened:
            if not isinstance(result, BaseException):
                await result.close()
        assert failures == [], f"round {round_number}: {failures[0]!r}"
