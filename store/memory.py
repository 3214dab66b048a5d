"""Agent memory: notes, summaries and commitments an agent wrote down, scoped to the agent.

Commitments have a life cycle: a pre-filter claims the entries it feeds a tick (`claim`), and the
tick marks them done when it completes (`complete_claimed`); a done entry is never fed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update

from store.checks import (
    agent_columns,
    check_aware,
    check_ids,
    check_int_ids,
    check_json,
    check_limit,
    check_text,
    optional_text,
)
from store.db import Area
from store.filters import Scalar, check_filters, data_matches
from store.models import MemoryEntry
from store.tables import MemoryRow
from store.types import utcnow

memory: Table = MemoryRow.__table__  # type: ignore[assignment]


class Memory(Area):
    async def add(
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
        values = {
            **agent_columns(tenant=tenant, app=app, agent=agent),
            "kind": check_text(kind, "memory kind", max_length=64),
            "content": check_text(content, "memory content", allow_empty=True),
            "data": check_json(data, "memory data"),
            "due_at": check_aware(due_at, "due_at"),
            "expires_at": check_aware(expires_at, "expires_at"),
            "created_at": utcnow(),
            "dedupe_key": optional_text(dedupe_key, "dedupe_key", max_length=600),
        }
        async with self._db.write() as conn:
            if dedupe_key is None:
                result = await conn.execute(memory.insert().values(**values))
                return int(result.inserted_primary_key[0])
            entry_id, _ = await self.insert_or_fetch(
                conn, memory, values,
                unique=(memory.c.tenant_id, memory.c.app_id, memory.c.agent_id, memory.c.dedupe_key),
                returning=memory.c.id,
            )
        return int(entry_id)

    async def query(
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
    ) -> list[MemoryEntry]:
        """The agent's memory entries not expired at `now`, newest first.

        `due_only`: only entries due at `now` (`due_at <= now`, or no due time at all), ordered by
        due time, oldest first (the most overdue first). `include_done=False` leaves out entries
        marked done. `data_equals`: equality filters on top-level fields of `data` (as records).
        """
        check_ids(tenant=tenant, app=app, agent=agent)
        now = check_aware(now, "now")  # type: ignore[assignment]
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
        query = query.limit(check_limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [MemoryEntry.from_row(row) for row in rows]

    async def claim(self, *, tenant: str, app: str, agent: str, ids: list[int], claim: str) -> int:
        """Mark the agent's open entries `ids` as fed to the tick `claim`; returns how many.

        A later claim replaces an earlier one (the earlier tick failed or never completed); done
        entries are left alone. See complete_claimed.
        """
        check_ids(tenant=tenant, app=app, agent=agent)
        claim = check_text(claim, "claim", max_length=520)
        ids = check_int_ids(ids, "memory ids")
        if not ids:
            return 0
        statement = (
            update(memory)
            .where(*_mine(tenant, app, agent), memory.c.id.in_(ids), memory.c.done_at.is_(None))
            .values(claimed_by=claim)
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def complete_claimed(self, *, tenant: str, app: str, agent: str, claim: str, at: datetime) -> int:
        """Mark done, at `at`, the agent's open entries claimed by `claim`; returns how many.

        Idempotent: a second call finds them done and changes nothing.
        """
        check_ids(tenant=tenant, app=app, agent=agent)
        claim = check_text(claim, "claim", max_length=520)
        statement = (
            update(memory)
            .where(*_mine(tenant, app, agent), memory.c.claimed_by == claim, memory.c.done_at.is_(None))
            .values(done_at=check_aware(at, "at"))
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def mark_done(self, *, tenant: str, app: str, agent: str, ids: list[int], at: datetime) -> list[int]:
        """Mark the agent's entries `ids` done at `at` (done ones keep their time).

        Returns the ids that belong to this agent (done now or before); others are ignored.
        """
        check_ids(tenant=tenant, app=app, agent=agent)
        ids = check_int_ids(ids, "memory ids")
        at = check_aware(at, "at")  # type: ignore[assignment]
        if not ids:
            return []
        mine = (*_mine(tenant, app, agent), memory.c.id.in_(ids))
        async with self._db.write() as conn:
            await conn.execute(update(memory).where(*mine, memory.c.done_at.is_(None)).values(done_at=at))
            found = (await conn.execute(select(memory.c.id).where(*mine).order_by(memory.c.id))).scalars()
            return [int(entry_id) for entry_id in found]


def _mine(tenant: str, app: str, agent: str) -> tuple[Any, ...]:
    return (memory.c.tenant_id == tenant, memory.c.app_id == app, memory.c.agent_id == agent)
