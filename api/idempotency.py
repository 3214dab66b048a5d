"""`Idempotency-Key` on POSTs: a retry gets the first answer again and changes nothing.

The key is scoped by tenant, app and route (a metric put, ...). The first request with a key runs
and its answer (status and body) is kept for 24 hours; a retry with the same request gets that
answer, marked `Idempotent-Replayed: true`. The same key with a different request (another path
or body) is a conflict (409), as is a retry that arrives while the first request still runs.
A request that failed changed nothing and keeps nothing: it may be retried with the same key.
(Events carry their own id, so the event endpoint passes the key on as the event's id instead.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Header
from fastapi.responses import JSONResponse

from api.errors import InvalidField
from api.targets import AppTarget
from contract.errors import Conflict
from store import Store
from store.idempotency import MAX_KEY_LENGTH
from store.types import utcnow

ANSWER_TTL = timedelta(hours=24)
# How long a first request may take to answer before a retry may run it again (its process died).
PENDING_LEASE = timedelta(minutes=5)
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_KEY_HEADER = Header(
    None, alias="Idempotency-Key",
    description=f"Makes the request safe to retry: up to {MAX_KEY_LENGTH} printable ASCII characters."
                " A retry within 24 h gets the first answer; the same key with a different request gets 409.")


def checked_key(key: str | None) -> str | None:
    """The `Idempotency-Key` header's value, or None; 400 when it is empty, too long or not printable."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidField("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def request_fingerprint(path: str, body: Any) -> str:
    """The same request retried has the same fingerprint, whatever its JSON's key order or spacing."""
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def answer_once(store: Store, target: AppTarget, *, route: str, key: str | None, fingerprint: str,
                      run: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]) -> JSONResponse:
    """Run the request (`run` gives status and JSON body) unless `key` has an answer already."""
    if key is None:
        status, body = await run()
        return JSONResponse(body, status_code=status)
    scope = {"tenant": target.tenant, "app": target.app, "route": route, "key": key}
    found = await store.idempotency.claim(**scope, request_hash=fingerprint, now=utcnow(), lease=PENDING_LEASE)
    if found is not None:
        if found.request_hash != fingerprint:
            raise Conflict(f"Idempotency-Key {key!r} was already used for a different request;"
                           " use a new key for a new request")
        if found.pending:
            raise Conflict(f"a request with Idempotency-Key {key!r} is still being processed; retry shortly")
        assert found.status is not None
        return JSONResponse(found.answer, status_code=found.status, headers={REPLAYED_HEADER: "true"})
    try:
        status, body = await run()
    except BaseException:
        await store.idempotency.release(**scope)
        raise
    await store.idempotency.finish(**scope, status=status, answer=body, expires_at=utcnow() + ANSWER_TTL)
    return JSONResponse(body, status_code=status)
