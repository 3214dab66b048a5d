"""Idempotent requests: the first answer to a request sent with an `Idempotency-Key`, for its retries.

A request first claims its key. The claim that inserts the row runs the request and then either
keeps its answer (`finish`) or gives the key back (`release`, when it failed and changed nothing),
so a retry may run it again. Every other claim finds the row: the stored answer, or a row still
pending while the first request runs. A pending row whose request died with its process expires
after a short lease; an answered one after its time to live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select, update

from store.checks import check_aware, check_ids, check_json, check_text
from store.db import Area
from store.errors import StoreError
from store.tables import IdempotentRequestRow

requests: Table = IdempotentRequestRow.__table__  # type: ignore[assignment]

MAX_KEY_LENGTH = 200
HASH_LENGTH = 64


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """What a claim found: the first request with the key, its answer once it has one."""

    request_hash: str
    status: int | None  # None while the first request is still running
    answer: Any
    created_at: datetime
    expires_at: datetime

    @property
    def pending(self) -> bool:
        return self.status is None


class IdempotentRequests(Area):
    async def claim(self, *, tenant: str, app: str, route: str, key: str, request_hash: str, now: datetime,
                    lease: timedelta) -> IdempotentRequest | None:
        """Claim `key` for a request: None when this request is the first (it runs, then `finish`es or
        `release`s within `lease`), else the row the first one left (expired rows do not count)."""
        mine = self._where(tenant=tenant, app=app, route=route, key=key)
        now = check_aware(now, "now")  # type: ignore[assignment]
        values = {
            "tenant_id": tenant, "app_id": app, "route": route, "idempotency_key": key,
            "request_hash": _check_hash(request_hash), "status": None, "answer": None,
            "created_at": now, "expires_at": now + lease,
        }
        async with self._db.write() as conn:
            await conn.execute(delete(requests).where(*mine, requests.c.expires_at <= now))
            inserted = (await conn.execute(self.insert(requests).values(**values).on_conflict_do_nothing(
                index_elements=[requests.c.tenant_id, requests.c.app_id, requests.c.route,
                                requests.c.idempotency_key]).returning(requests.c.route))).scalar_one_or_none()
            if inserted is not None:
                return None
            row = (await conn.execute(select(requests).where(*mine))).one()
        return IdempotentRequest(row.request_hash, row.status, row.answer, row.created_at, row.expires_at)

    async def finish(self, *, tenant: str, app: str, route: str, key: str, status: int, answer: Any,
                     expires_at: datetime) -> None:
        """Keep the claimed request's answer (status and JSON body) until `expires_at`."""
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise StoreError(f"status must be an HTTP status code (got {status!r})")
        async with self._db.write() as conn:
            await conn.execute(update(requests).where(
                *self._where(tenant=tenant, app=app, route=route, key=key), requests.c.status.is_(None),
            ).values(status=status, answer=check_json(answer, "answer"),
                     expires_at=check_aware(expires_at, "expires_at")))

    async def release(self, *, tenant: str, app: str, route: str, key: str) -> None:
        """Give a claimed key back: its request failed and changed nothing, so a retry may run it."""
        async with self._db.write() as conn:
            await conn.execute(delete(requests).where(
                *self._where(tenant=tenant, app=app, route=route, key=key), requests.c.status.is_(None)))

    async def purge_expired(self, *, now: datetime) -> int:
        """Delete every expired row, of every tenant; how many went."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(requests).where(requests.c.expires_at <= check_aware(now, "now")))
        return result.rowcount

    @staticmethod
    def _where(*, tenant: str, app: str, route: str, key: str) -> tuple[Any, ...]:
        check_ids(tenant=tenant, app=app)
        route = check_text(route, "route", max_length=200)
        key = check_text(key, "idempotency key", max_length=MAX_KEY_LENGTH)
        return (requests.c.tenant_id == tenant, requests.c.app_id == app, requests.c.route == route,
                requests.c.idempotency_key == key)


def _check_hash(value: str) -> str:
    return check_text(value, "request hash", max_length=HASH_LENGTH)
