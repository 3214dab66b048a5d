"""The store's idempotent requests (on SQLite and PostgreSQL): claim, finish, release, expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from store import Store, StoreError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
DAY = timedelta(hours=24)
KEY = {"tenant": "acme", "app": "crm", "route": "metrics", "key": "k-1"}


async def test_first_claim_runs_and_a_retry_finds_the_answer(store: Store) -> None:
    assert await store.idempotency.claim(**KEY, request_hash="h1", now=T0, lease=LEASE) is None
    pending = await store.idempotency.claim(**KEY, request_hash="h1", now=T0, lease=LEASE)
    assert pending is not None and pending.pending

    await store.idempotency.finish(**KEY, status=200, answer={"value": 1.5}, expires_at=T0 + DAY)
    found = await store.idempotency.claim(**KEY, request_hash="h2", now=T0 + timedelta(hours=23), lease=LEASE)
    assert found is not None
    assert (found.request_hash, found.status, found.answer, found.pending) == ("h1", 200, {"value": 1.5}, False)


async def test_keys_are_scoped_by_tenant_app_and_route(store: Store) -> None:
    assert await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE) is None
    for other in ({"tenant": "globex"}, {"app": "billing"}, {"route": "events"}):
        assert await store.idempotency.claim(**{**KEY, **other}, request_hash="h", now=T0, lease=LEASE) is None


async def test_a_released_key_can_be_claimed_again(store: Store) -> None:
    assert await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE) is None
    await store.idempotency.release(**KEY)
    assert await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE) is None


async def test_release_never_drops_a_kept_answer(store: Store) -> None:
    await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE)
    await store.idempotency.finish(**KEY, status=200, answer={}, expires_at=T0 + DAY)
    await store.idempotency.release(**KEY)
    found = await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE)
    assert found is not None and found.status == 200


async def test_pending_claims_end_with_their_lease_and_answers_with_their_ttl(store: Store) -> None:
    await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE)
    # The first request's process died before it answered: once the lease is over, a retry runs.
    assert await store.idempotency.claim(**KEY, request_hash="h", now=T0 + LEASE, lease=LEASE) is None
    await store.idempotency.finish(**KEY, status=200, answer={}, expires_at=T0 + LEASE + DAY)
    assert await store.idempotency.claim(**KEY, request_hash="h", now=T0 + LEASE + DAY, lease=LEASE) is None


async def test_purge_removes_expired_rows_only(store: Store) -> None:
    await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE)
    await store.idempotency.finish(**KEY, status=200, answer={}, expires_at=T0 + DAY)
    await store.idempotency.claim(**{**KEY, "key": "k-2"}, request_hash="h", now=T0, lease=LEASE)
    assert await store.idempotency.purge_expired(now=T0 + LEASE) == 1
    assert await store.idempotency.purge_expired(now=T0 + DAY) == 1


async def test_concurrent_claims_let_exactly_one_run(store: Store) -> None:
    results = await asyncio.gather(
        *(store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE) for _ in range(5)))
    assert sum(result is None for result in results) == 1


@pytest.mark.parametrize("bad", [{"key": ""}, {"key": "k" * 201}, {"tenant": "Acme"}])
async def test_bad_keys_and_ids_are_refused(store: Store, bad: dict) -> None:
    with pytest.raises(StoreError):
        await store.idempotency.claim(**{**KEY, **bad}, request_hash="h", now=T0, lease=LEASE)


async def test_finish_refuses_a_status_that_is_not_http(store: Store) -> None:
    await store.idempotency.claim(**KEY, request_hash="h", now=T0, lease=LEASE)
    with pytest.raises(StoreError):
        await store.idempotency.finish(**KEY, status=42, answer={}, expires_at=T0 + DAY)
