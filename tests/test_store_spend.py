"""The spend ledger, the ceilings it enforces, the operator queue and the audit log, on SQLite and
PostgreSQL: one row per call whatever the retries, a reservation counts until it is settled, a
ceiling is never passed, concurrent reservations of one agent are serialised, the monthly hold is one
queue item, and an operator's resolution lifts it."""

from __future__ import annotations

import asyncio

import pytest

from contract.budget import CeilingReached, SpendEntry, nano_usd, usd

TENANT = "acme"


def entry(call: str, *, tenant: str = TENANT, workflow: str = "heartbeat:acme:shop:helper:digest", agent: str = "helper",
          day: str = "2026-12-01", month: str = "2026-12", model: str = "gpt-4o-mini") -> SpendEntry:
    return SpendEntry(tenant=tenant, app="shop", agent=agent, workflow_id=workflow, purpose="tick", call_key=call,
                      provider="openai", model=model, local_day=day, local_month=month)


async def settle(store, call: SpendEntry, cost: str, tokens_in: int = 100, tokens_out: int = 10) -> None:
    await store.spend.settle(call, tokens_in=tokens_in, tokens_out=tokens_out, cache_read_tokens=0,
                             cache_write_tokens=0, cost_nano=nano_usd(cost))


async def test_one_row_per_call_whatever_the_retries(store):
    first = entry("t1/0")
    await store.spend.reserve(first, reserve_nano=nano_usd("0.01"), daily_nano=nano_usd("1"), monthly_nano=None)
    await store.spend.reserve(first, reserve_nano=nano_usd("0.5"), daily_nano=nano_usd("1"), monthly_nano=None)
    await settle(store, first, "0.002")
    await settle(store, first, "0.009")  # a retried activity that called again: the first settlement stands
    [row] = await store.spend.calls(tenant=TENANT, workflow_id=first.workflow_id)
    assert (row["status"], row["nano_usd"], row["reserved_nano_usd"]) == ("settled", nano_usd("0.002"), nano_usd("0.01"))
    # Settling without a reservation (no budget applies) writes the row once too.
    loose = entry("t2/0")
    await settle(store, loose, "0.003")
    await settle(store, loose, "0.003")
    assert len(await store.spend.calls(tenant=TENANT, workflow_id=first.workflow_id)) == 2


async def test_daily_ceiling_counts_reservations_and_refuses_once_audited(store):
    ceiling = nano_usd("0.05")
    await store.spend.reserve(entry("a"), reserve_nano=nano_usd("0.02"), daily_nano=ceiling, monthly_nano=None)
    await store.spend.reserve(entry("b"), reserve_nano=nano_usd("0.02"), daily_nano=ceiling, monthly_nano=None)
    with pytest.raises(CeilingReached) as refused:  # 0.04 reserved + 0.02 > 0.05
        await store.spend.reserve(entry("c"), reserve_nano=nano_usd("0.02"), daily_nano=ceiling, monthly_nano=None)
    assert (refused.value.level, usd(refused.value.spent_nano)) == ("daily", usd(nano_usd("0.04")))
    await settle(store, entry("a"), "0.001")  # settled far below its reservation: room again
    await store.spend.reserve(entry("c"), reserve_nano=nano_usd("0.02"), daily_nano=ceiling, monthly_nano=None)
    # Another day, another task, and a prefix-sharing tenant have their own sums.
    await store.spend.reserve(entry("d", day="2026-12-02"), reserve_nano=nano_usd("0.05"), daily_nano=ceiling,
                              monthly_nano=None)
    await store.spend.reserve(entry("e", workflow="task:acme:shop:helper:other"), reserve_nano=nano_usd("0.05"),
                              daily_nano=ceiling, monthly_nano=None)
    await store.spend.reserve(entry("f", tenant="acme2"), reserve_nano=nano_usd("0.05"), daily_nano=ceiling,
                              monthly_nano=None)
    for _ in range(3):
        with pytest.raises(CeilingReached):
            await store.spend.reserve(entry("g"), reserve_nano=nano_usd("0.04"), daily_nano=ceiling, monthly_nano=None)
    audited = await store.audit.list(tenant=TENANT, action="budget_daily")
    assert len(audited) == 1 and audited[0].target == "heartbeat:acme:shop:helper:digest"
    assert await store.queue.list(tenant=TENANT) == []  # a daily refusal holds nothing


async def test_monthly_hold_is_one_queue_item_until_resolved(store):
    ceiling = nano_usd("0.10")
    await store.spend.reserve(entry("m1"), reserve_nano=nano_usd("0.08"), daily_nano=None, monthly_nano=ceiling)
    await settle(store, entry("m1"), "0.08")
    for call in ("m2", "m3", "m4"):
        with pytest.raises(CeilingReached) as refused:
            await store.spend.reserve(entry(call, workflow=f"task:acme:shop:helper:{call}"),
                                      reserve_nano=nano_usd("0.05"), daily_nano=None, monthly_nano=ceiling)
        assert refused.value.level == "monthly"
    [item] = await store.queue.list(tenant=TENANT)
    assert (item.kind, item.subject, item.status) == ("budget_monthly", "shop/helper", "open")
    assert await store.spend.held(tenant=TENANT, app="shop", agent="helper")
    assert not await store.spend.held(tenant="acme2", app="shop", agent="helper")
    assert not await store.spend.held(tenant=TENANT, app="shop", agent="other")
    assert len(await store.audit.list(tenant=TENANT, action="budget_monthly")) == 1

    # Approved once: the hold lifts and the ceiling is waived for this month only.
    resolved = await store.queue.resolve(tenant=TENANT, item_id=item.id, status="approved", actor="operator:cli",
                                         resolution={"approve_once": True}, waive_month="2026-12")
    assert resolved is not None and resolved.status == "approved"
    assert not await store.spend.held(tenant=TENANT, app="shop", agent="helper")
    await store.spend.reserve(entry("m5"), reserve_nano=nano_usd("0.50"), daily_nano=None, monthly_nano=ceiling)
    with pytest.raises(CeilingReached):  # next month the manifest's ceiling applies again
        await store.spend.reserve(entry("n1", month="2027-01", day="2027-01-01"), reserve_nano=nano_usd("0.11"),
                                  daily_nano=None, monthly_nano=ceiling)
    [second] = await store.queue.list(tenant=TENANT)
    # Raised: the new ceiling replaces the manifest's.
    await store.queue.resolve(tenant=TENANT, item_id=second.id, status="approved", actor="api",
                              resolution={"raise_monthly_usd": "1"}, monthly_nano=nano_usd("1"))
    await store.spend.reserve(entry("n2", month="2027-01", day="2027-01-01"), reserve_nano=nano_usd("0.9"),
                              daily_nano=None, monthly_nano=ceiling)
    assert await store.queue.resolve(tenant=TENANT, item_id=second.id, status="approved", actor="api",
                                     resolution={}) is None  # already resolved
    assert await store.queue.resolve(tenant="acme2", item_id=item.id, status="approved", actor="api",
                                     resolution={}) is None  # another tenant's item
    actions = [entry.action for entry in await store.audit.list(tenant=TENANT)]
    assert actions.count("queue_resolve") == 2


async def test_concurrent_reservations_of_one_agent_never_pass_the_ceiling(store):
    ceiling = nano_usd("0.30")
    outcomes = await asyncio.gather(*(
        store.spend.reserve(entry(f"c{i}", workflow=f"task:acme:shop:helper:t{i}"), reserve_nano=nano_usd("0.1"),
                            daily_nano=None, monthly_nano=ceiling) for i in range(10)), return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 3
    assert all(isinstance(o, CeilingReached) for o in outcomes if o is not None)
    assert len(await store.queue.list(tenant=TENANT)) == 1


async def test_summary_by_day_task_agent_model(store):
    await settle(store, entry("s1"), "0.01", tokens_in=100, tokens_out=5)
    await settle(store, entry("s2", day="2026-12-02", model="gpt-4o"), "0.02", tokens_in=200, tokens_out=5)
    await settle(store, entry("s3", workflow="chat:acme:shop:helper:main", agent="helper"), "0.03")
    await store.spend.settle(entry("s4", model="local-llm"), tokens_in=1, tokens_out=1, cache_read_tokens=0,
                             cache_write_tokens=0, cost_nano=None)
    await store.spend.reserve(entry("open"), reserve_nano=nano_usd("5"), daily_nano=None, monthly_nano=None)
    by_day = {line.key: line for line in await store.spend.summary(tenant=TENANT, by="day")}
    assert set(by_day) == {"2026-12-01", "2026-12-02"}
    assert (by_day["2026-12-01"].calls, by_day["2026-12-01"].unpriced_calls) == (3, 1)
    assert usd(by_day["2026-12-01"].nano_usd) == usd(nano_usd("0.04"))  # reservations are not spend
    by_model = {line.key: line.nano_usd for line in await store.spend.summary(tenant=TENANT, by="model")}
    assert by_model == {"openai/gpt-4o": nano_usd("0.02"), "openai/gpt-4o-mini": nano_usd("0.04"),
                        "openai/local-llm": 0}
    by_task = [line.key for line in await store.spend.summary(tenant=TENANT, by="task")]
    assert by_task == ["chat:acme:shop:helper:main", "heartbeat:acme:shop:helper:digest"]
    assert [line.key for line in await store.spend.summary(tenant=TENANT, by="agent")] == ["shop/helper"]
    assert await store.spend.summary(tenant="acme2", by="day") == []
