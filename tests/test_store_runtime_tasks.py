"""The runtime tasks area on SQLite and PostgreSQL: a key once per agent, the bounds, ending."""

from __future__ import annotations

import pytest

from store import Store
from store.jobs import TaskLimitReached


async def create(store: Store, key: str, *, agent: str = "cmo", tenant: str = "acme", created_in: str | None = None,
                 max_active: int = 3, max_per_run: int = 2, prompt: str = "p"):
    return await store.runtime_tasks.create(
        tenant=tenant, app="marketing", agent=agent, key=key, workflow_id=f"job:{tenant}:marketing:{agent}:{key}",
        config={"prompt": prompt}, created_by="cli", created_in=created_in, max_active=max_active,
        max_per_run=max_per_run)


async def test_a_key_is_created_once_and_a_repeat_returns_it_unchanged(store):
    first, created = await create(store, "follow-up")
    again, created_again = await create(store, "follow-up", prompt="something else")
    assert (created, created_again) == (True, False)
    assert again == first and again.config == {"prompt": "p"}
    # Done is still the task: a one-shot that ran is not run again by a second create.
    assert await store.runtime_tasks.end(tenant="acme", app="marketing", agent="cmo", key="follow-up", status="done")
    done, created_after_done = await create(store, "follow-up", prompt="again")
    assert (done.status, created_after_done) == ("done", False)


async def test_a_cancelled_key_may_be_created_again(store):
    await create(store, "digest")
    assert await store.runtime_tasks.end(tenant="acme", app="marketing", agent="cmo", key="digest", status="cancelled")
    assert not await store.runtime_tasks.end(tenant="acme", app="marketing", agent="cmo", key="digest",
                                             status="cancelled")
    renewed, created = await create(store, "digest", prompt="new")
    assert (created, renewed.status, renewed.config, renewed.ended_at) == (True, "active", {"prompt": "new"}, None)


async def test_bounds_per_agent_and_per_run(store):
    for key in ("a", "b", "c"):
        await create(store, key)
    with pytest.raises(TaskLimitReached, match="3 active runtime tasks"):
        await create(store, "d")
    await create(store, "d", agent="cfo")  # another agent's allowance is its own
    await create(store, "x", tenant="acme2")  # and another tenant's
    run = "heartbeat:acme:marketing:cfo:daily/run-1/3"
    for key in ("e", "f"):
        await create(store, key, agent="cfo", created_in=run, max_active=10)
    with pytest.raises(TaskLimitReached, match="this run already created 2"):
        await create(store, "g", agent="cfo", created_in=run, max_active=10)
    await create(store, "g", agent="cfo", created_in="another run", max_active=10)
    assert sorted(t.key for t in await store.runtime_tasks.list(tenant="acme", agent="cfo")) == ["d", "e", "f", "g"]


async def test_lists_are_scoped_to_the_tenant(store):
    await create(store, "mine")
    await create(store, "theirs", tenant="acme2")
    assert [t.key for t in await store.runtime_tasks.list(tenant="acme")] == ["mine"]
    assert [t.key for t in await store.runtime_tasks.list(tenant="acme2", status="active")] == ["theirs"]
    assert await store.runtime_tasks.get(tenant="acme", app="marketing", agent="cmo", key="theirs") is None
