"""Running a command's async work: open the store and/or connect to Temporal, run, close.

Database and Temporal failures become the project's errors here (one line, no traceback); the
command group turns those into `error: ...` and exit status 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from client.temporal import temporal_errors
from contract.errors import Unavailable

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store

T = TypeVar("T")
P = TypeVar("P")


def run_with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run `action` on it, close it."""
    return run(_with_store(action))


def run_with_client(action: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to Temporal and run `action`."""
    from runtime.connection import connect, own_runtime

    async def main() -> T:
        return await action(await connect())

    with own_runtime():  # the SDK's threads end before the interpreter does (see own_runtime)
        return run(main())


def run_with_temporal(
    prepare: Callable[[Store], Awaitable[P]], action: Callable[[Client, Store, P], Awaitable[T]]
) -> T:
    """Open the store, run `prepare` (store checks), then connect to Temporal and run `action`:
    checks that need only the store (unknown tenant or app) fail before any Temporal call."""
    from runtime.connection import connect, own_runtime

    async def with_store(store: Store) -> T:
        prepared = await prepare(store)
        return await action(await connect(), store, prepared)

    with own_runtime():  # the SDK's threads end before the interpreter does (see own_runtime)
        return run(_with_store(with_store))


async def _with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    from store import open_store

    try:
        store = await open_store()
    except (SQLAlchemyError, OSError) as exc:
        raise _database_error(exc) from None
    try:
        return await action(store)
    except (SQLAlchemyError, OSError) as exc:
        raise _database_error(exc) from None
    finally:
        await store.close()


def run(work: Awaitable[T]) -> T:
    """Run the command's coroutine; Temporal's refusals become the project's errors."""
    with temporal_errors():
        return asyncio.run(work)  # type: ignore[arg-type]


def _database_error(exc: BaseException) -> Unavailable:
    # Unreachable server, unwritable file, ...: say so in one line.
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return Unavailable(f"database error: {detail}")
