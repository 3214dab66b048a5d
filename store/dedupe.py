"""Processed cases: which case keys a task has processed, until its dedupe TTL expires.

Kept here, not in workflow history: a task that sees thousands of cases keeps a small history,
and the keys expire by time, not by continue-as-new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, select

from store.checks import check_aware, check_id, check_key, check_text
from store.db import Area
from store.tables import ProcessedCaseRow

processed: Table = ProcessedCaseRow.__table__  # type: ignore[assignment]

# Keys per `IN (...)` read: well under SQLite's and asyncpg's bound-parameter limits.
KEY_BATCH = 500


class Dedupe(Area):
    async def seen(self, *, tenant: str, task_id: str, keys: Sequence[str], now: datetime) -> set[str]:
        """The keys among `keys` the task processed and whose TTL has not expired at `now`."""
        check_id(tenant, "tenant id")
        task_id = check_text(task_id, "task id", max_length=300)
        unique = sorted({check_key(key) for key in keys})
        found: set[str] = set()
        async with self._db.read() as conn:
            for start in range(0, len(unique), KEY_BATCH):
                query = select(processed.c.case_key).where(
                    processed.c.task_id == task_id, processed.c.tenant_id == tenant,
                    processed.c.case_key.in_(unique[start : start + KEY_BATCH]),
                    processed.c.expires_at > check_aware(now, "now"),
                )
                found.update((await conn.execute(query)).scalars())
        return found

    async def mark(self, *, tenant: str, task_id: str, keys: Sequence[str], now: datetime, ttl: timedelta) -> None:
        """Record `keys` as processed at `now` until `now + ttl` (a key seen again is extended);
        the task's expired keys go at the same time."""
        check_id(tenant, "tenant id")
        task_id = check_text(task_id, "task id", max_length=300)
        now = check_aware(now, "now")  # type: ignore[assignment]
        rows = [{"task_id": task_id, "case_key": check_key(key), "tenant_id": tenant, "processed_at": now,
                 "expires_at": now + ttl} for key in dict.fromkeys(keys)]
        async with self._db.write() as conn:
            await conn.execute(delete(processed).where(processed.c.task_id == task_id, processed.c.expires_at <= now))
            for row in rows:
                insert = self.insert(processed).values(**row)
                await conn.execute(insert.on_conflict_do_update(
                    index_elements=[processed.c.task_id, processed.c.case_key],
                    set_={"processed_at": insert.excluded.processed_at, "expires_at": insert.excluded.expires_at},
                ))

    async def purge_expired(self, *, now: datetime) -> int:
        """Delete every expired key, of every task; how many went."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(processed).where(processed.c.expires_at <= check_aware(now, "now")))
        return result.rowcount
