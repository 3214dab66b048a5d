"""Shared fixtures. `store` runs each test on SQLite and on PostgreSQL, from an empty database.

PostgreSQL: the server on 127.0.0.1:5432, database `test`, trust auth as `postgres` or `root`
(or HEARTBEATS_TEST_POSTGRES_URL). Every test gets its own schema `hb_test_<random>`, dropped
afterwards. Without a reachable server the PostgreSQL cases are skipped, except under CI=true,
where they fail: CI must not pass by testing less.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from store import Store, open_store

POSTGRES_USERS = ("postgres", "root")
POSTGRES_HOST = "127.0.0.1:5432"
POSTGRES_DATABASE = "test"


@dataclass
class Database:
    """An empty database for one test: its URL and the driver options that isolate it."""

    backend: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    async def open(self) -> Store:
        return await open_store(self.url, connect_args=self.connect_args)


def _postgres_candidates() -> list[str]:
    explicit = os.environ.get("HEARTBEATS_TEST_POSTGRES_URL")
    if explicit:
        return [explicit]
    return [f"postgresql://{user}@{POSTGRES_HOST}/{POSTGRES_DATABASE}" for user in POSTGRES_USERS]


_postgres_probe: dict[str, Any] = {}


async def postgres_admin_url() -> str:
    """A URL that connects, or skip (fail under CI=true) with the reasons each candidate failed."""
    if "url" not in _postgres_probe:
        problems = []
        _postgres_probe["url"] = None
        for url in _postgres_candidates():
            try:
                conn = await asyncpg.connect(url, timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                problems.append(f"{url}: {exc}")
                continue
            await conn.close()
            _postgres_probe["url"] = url
            break
        _postgres_probe["problems"] = "; ".join(problems)
    url = _postgres_probe["url"]
    if url is None:
        reason = f"PostgreSQL unreachable ({_postgres_probe['problems']})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires the PostgreSQL tests to run", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of each backend."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'store.db'}")
        return
    admin_url = await postgres_admin_url()
    schema = f"hb_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        # search_path makes the schema the default for every table, including alembic_version.
        yield Database(
            "postgresql", admin_url, connect_args={"server_settings": {"search_path": schema}}
        )
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    """A migrated, empty store on each backend."""
    opened = await database.open()
    try:
        yield opened
    finally:
        await opened.close()
