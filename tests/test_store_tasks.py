"""The store areas tasks rely on: processed cases (with their TTL), events, metrics and thresholds,
webhook secrets. Each on SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from store import Store, StoreError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TASK = "task:acme:support:reviewer:review_cases"


async def test_a_processed_case_is_seen_until_its_ttl_expires(store: Store) -> None:
    await store.dedupe.mark(tenant="acme", task_id=TASK, keys=["case-1", "case-2"], now=T0, ttl=timedelta(hours=2))
    seen = await store.dedupe.seen(tenant="acme", task_id=TASK, keys=["case-1", "case-3"], now=T0 + timedelta(hours=1))
    assert seen == {"case-1"}
    assert await store.dedupe.seen(tenant="acme", task_id=TASK, keys=["case-1"], now=T0 + timedelta(hours=2)) == set()
    # Another tenant's task of the same name shares nothing; nor does another task.
    assert await store.dedupe.seen(tenant="acme2", task_id=TASK, keys=["case-1"], now=T0) == set()
    assert await store.dedupe.seen(tenant="acme", task_id=TASK + "2", keys=["case-1"], now=T0) == set()


async def test_marking_again_extends_and_expired_keys_go(store: Store) -> None:
    await store.dedupe.mark(tenant="acme", task_id=TASK, keys=["old", "kept"], now=T0, ttl=timedelta(hours=1))
    later = T0 + timedelta(hours=2)
    await store.dedupe.mark(tenant="acme", task_id=TASK, keys=["kept"], now=later, ttl=timedelta(hours=1))
    assert await store.dedupe.seen(tenant="acme", task_id=TASK, keys=["old", "kept"], now=later) == {"kept"}
    assert await store.dedupe.purge_expired(now=later + timedelta(hours=1)) == 1  # "old" went with the mark


async def test_many_keys_are_read_in_batches(store: Store) -> None:
    keys = [f"row:{i}" for i in range(1_200)]
    await store.dedupe.mark(tenant="acme", task_id=TASK, keys=keys[::2], now=T0, ttl=timedelta(days=1))
    assert await store.dedupe.seen(tenant="acme", task_id=TASK, keys=keys, now=T0) == set(keys[::2])


async def test_an_event_is_stored_once_per_id(store: Store) -> None:
    first, created = await store.events.record(tenant="acme", app="support", event_id="ev-1", name="case.created",
                                               body={"case_id": "c1"})
    again, repeated = await store.events.record(tenant="acme", app="support", event_id="ev-1", name="case.created",
                                                body={"case_id": "changed"})
    assert created and not repeated
    assert again.body == {"case_id": "c1"} and again.tasks is None
    await store.events.mark_delivered(tenant="acme", app="support", event_id="ev-1", tasks=[TASK])
    delivered, _ = await store.events.record(tenant="acme", app="support", event_id="ev-1", name="case.created", body={})
    assert delivered.tasks == [TASK] and delivered.delivered_at is not None
    assert await store.events.bodies(tenant="acme", app="support", event_ids=["ev-1", "nope"]) == {"ev-1": {"case_id": "c1"}}
    assert await store.events.bodies(tenant="acme2", app="support", event_ids=["ev-1"]) == {}


async def test_a_threshold_fires_once_per_crossing_and_rearms(store: Store) -> None:
    def value(in_condition: bool, minutes: int):
        return store.metrics.cross(tenant="acme", task_id=TASK, trigger=3, in_condition=in_condition,
                                   at=T0 + timedelta(minutes=minutes))

    assert [await value(c, m) for m, c in enumerate([False, True, True, True, False, True, True])] == [
        False, True, False, False, False, True, False]


async def test_simultaneous_values_fire_a_threshold_once(store: Store) -> None:
    fired = await asyncio.gather(*(store.metrics.cross(tenant="acme", task_id=TASK, trigger=0, in_condition=True,
                                                       at=T0) for _ in range(8)))
    assert fired.count(True) == 1


async def test_a_metric_keeps_its_last_finite_value(store: Store) -> None:
    await store.metrics.put(tenant="acme", app="support", metric="error_rate", value=0.01, at=T0)
    await store.metrics.put(tenant="acme", app="support", metric="error_rate", value=0.031, at=T0)
    assert await store.metrics.last(tenant="acme", app="support", metric="error_rate") == 0.031
    with pytest.raises(StoreError, match="finite number"):
        await store.metrics.put(tenant="acme", app="support", metric="error_rate", value=float("nan"), at=T0)


async def test_a_webhook_secret_is_made_once_and_rotated_on_request(store: Store) -> None:
    first = await store.webhook_secrets.get_or_create(tenant="acme", app="support")
    assert first.startswith("whsec_") and await store.webhook_secrets.get_or_create(tenant="acme", app="support") == first
    rotated = await store.webhook_secrets.get_or_create(tenant="acme", app="support", rotate=True)
    assert rotated != first and await store.webhook_secrets.get(tenant="acme", app="support") == rotated
    assert await store.webhook_secrets.get(tenant="acme", app="support2") is None
