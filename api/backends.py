"""What the endpoints work on: the store and a Temporal client.

The store is opened before the server answers (a wrong database URL stops the start with one
clear line). Temporal is connected on first need: the server starts, and answers what needs no
Temporal, while Temporal is still starting or briefly away; an endpoint that needs it meanwhile
answers 503 and the next request tries again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from contract.errors import Unavailable

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store


class Backends:
    def __init__(self, *, store: Store | None = None, temporal: Client | None = None,
                 temporal_address: str | None = None, temporal_namespace: str | None = None) -> None:
        """`store` / `temporal` given: used as they are and left open; otherwise opened and closed here."""
        self._store = store
        self._owns_store = store is None
        self._temporal = temporal
        self._owns_temporal = temporal is None
        self._address = temporal_address
        self._namespace = temporal_namespace
        self._connecting = asyncio.Lock()

    async def open(self) -> None:
        """Open the store (HEARTBEATS_DATABASE_URL, else .data/heartbeats.db) unless it was given."""
        if self._store is not None:
            return
        from store import open_store

        try:
            self._store = await open_store()
        except (SQLAlchemyError, OSError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Unavailable(f"database error: {detail}") from None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise Unavailable("the server's store is not open")
        return self._store

    async def temporal(self) -> Client:
        """The Temporal client, connected on first use; Unavailable (and retried next time) when it cannot be."""
        if self._temporal is not None:
            return self._temporal
        from runtime.connection import connect

        async with self._connecting:
            if self._temporal is None:
                self._temporal = await connect(address=self._address, namespace=self._namespace)
        return self._temporal

    async def close(self) -> None:
        if self._owns_store and self._store is not None:
            await self._store.close()
            self._store = None
        if self._owns_temporal:
            # Dropped, so the process's own SDK runtime can shut down with the command
            # (runtime.connection.own_runtime) rather than at interpreter exit.
            self._temporal = None
