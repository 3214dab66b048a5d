"""A task's cases (activities/cases.py) on a real store, SQLite and PostgreSQL: keys, dedupe across
triggers and within a firing, the no-op receipt, force, deferral beyond one run's cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.cases import cap_body
from activities.heartbeat_activities import HeartbeatActivities
from contract.messages import MAX_CASE_BODY_CHARS, MAX_CASES_PER_RUN, TaskCasesRequest, TaskPollRequest, TickRef
from contract.task import MAX_KEY_CHARS, PendingCase, case_key
from skills.catalog import default_registry
from store import Store
from tests.store_json import jsonable

TENANT, APP = "acme", "support"
TASK_ID = f"task:{TENANT}:{APP}:reviewer:review"
AT = datetime.now(UTC).replace(microsecond=0)  # the activities read the clock: keys expire from now


def tick(n: int = 1, trigger: str = "event") -> TickRef:
    return TickRef(heartbeat_id=TASK_ID, tenant=TENANT, app=APP, agent="reviewer", slug="review",
                   tick_id=f"run-1/{n}", at=AT + timedelta(minutes=n), trigger=trigger)


def event(ref: str) -> PendingCase:
    return PendingCase(source="event", ref=ref, name="case.created")


@pytest.fixture
def acts(store: Store) -> HeartbeatActivities:
    return HeartbeatActivities(store, default_registry())


async def run_cases(acts: HeartbeatActivities, cases: list[PendingCase], *, n: int = 1, key: str | None = "case_id",
                    trigger: str = "event"):
    request = TaskCasesRequest(tick=tick(n, trigger), cases=cases, dedupe_key=key, ttl_hours=24)
    return await ActivityEnvironment().run(acts.task_cases, request)


async def post(store: Store, event_id: str, body: dict[str, Any]) -> None:
    await store.events.record(tenant=TENANT, app=APP, event_id=event_id, name="case.created", body=body)


async def receipts(store: Store) -> list[dict]:
    return list(reversed(jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=TASK_ID, limit=100))))


def test_case_key_reads_the_dedupe_path_else_the_default():
    body = {"case_id": "c1", "data": {"id": 7, "ref": {"a": 1}}}
    assert case_key(body, "case_id", default="evt-1") == "c1"
    assert case_key(body, "data.id", default="evt-1") == "7"
    assert case_key(body, "data.ref", default="evt-1") == '{"a":1}'
    assert case_key(body, "missing", default="evt-1") == "evt-1"
    assert case_key(body, None, default="evt-1") == "evt-1"
    assert case_key(["not", "a", "dict"], "case_id", default="evt-1") == "evt-1"
    long = case_key({"k": "x" * (MAX_KEY_CHARS + 1)}, "k", default="d")
    assert long.startswith("sha256:") and len(long) < MAX_KEY_CHARS
    assert long != case_key({"k": "y" * (MAX_KEY_CHARS + 1)}, "k", default="d")


def test_cap_body_cuts_only_what_is_too_long():
    small = {"text": "x" * 100}
    assert cap_body(small) == small
    cut = cap_body({"text": "x" * (MAX_CASE_BODY_CHARS * 2)})
    assert cut["truncated"] is True and cut["chars"] > MAX_CASE_BODY_CHARS
    assert len(cut["excerpt"]) < MAX_CASE_BODY_CHARS


async def test_events_are_keyed_by_the_dedupe_path_and_duplicates_drop_within_and_across_firings(store, acts):
    await post(store, "e1", {"case_id": "c1"})
    await post(store, "e2", {"case_id": "c1", "note": "the same case again"})
    await post(store, "e3", {"case_id": "c2"})
    first = await run_cases(acts, [event("e1"), event("e2"), event("e3"), event("never-stored")])
    assert [(case.key, case.body) for case in first.cases] == [("c1", {"case_id": "c1"}), ("c2", {"case_id": "c2"})]
    assert (first.total, first.duplicates, first.receipt_written, first.deferred) == (3, 1, False, [])

    # Processed (what complete_tick does when the run completes): both keys are duplicates now.
    await store.dedupe.mark(tenant=TENANT, task_id=TASK_ID, keys=["c1", "c2"], now=AT, ttl=timedelta(hours=24))
    await post(store, "e4", {"case_id": "c2"})
    again = await run_cases(acts, [event("e4"), event("e1")], n=2)
    assert (again.cases, again.total, again.duplicates, again.receipt_written) == ([], 2, 2, True)
    [receipt] = await receipts(store)
    assert (receipt["outcome"], receipt["reason"], receipt["cases"], receipt["duplicates"]) == (
        "skipped", "duplicate", 2, 2)

    # The operator override keeps them.
    forced = await run_cases(acts, [PendingCase(source="manual", ref="manual", payload={"case_id": "c1"}, force=True)],
                             n=3, trigger="manual")
    assert ([case.key for case in forced.cases], forced.forced, forced.duplicates) == (["c1"], True, 0)


async def test_the_key_space_is_the_tasks_whatever_the_trigger(store, acts):
    await store.dedupe.mark(tenant=TENANT, task_id=TASK_ID, keys=["c1"], now=AT, ttl=timedelta(hours=24))
    delegated = PendingCase(source="a2a", ref="dlg-1", payload={"case_id": "c1"})
    manual = PendingCase(source="manual", ref="manual", payload={"case_id": "c1"})
    for n, case in enumerate((delegated, manual), start=1):
        found = await run_cases(acts, [case], n=n, trigger=case.source)
        assert (found.cases, found.duplicates) == ([], 1)
    # Another task's processed keys are its own: a prefix-sharing task id sees none of them.
    other = TaskCasesRequest(tick=tick(9).model_copy(update={"heartbeat_id": TASK_ID + "x"}), cases=[delegated],
                             dedupe_key="case_id", ttl_hours=24)
    assert [case.key for case in (await ActivityEnvironment().run(acts.task_cases, other)).cases] == ["c1"]


async def test_default_keys_per_trigger(store, acts):
    await post(store, "e1", {"subject": "no case id"})
    found = await run_cases(acts, [event("e1")], key=None)
    assert [case.key for case in found.cases] == ["e1"]
    crossing = PendingCase(source="threshold", ref="error_rate@2026-03-01T09:00:00.000000Z",
                           payload={"metric": "error_rate", "value": 0.05})
    assert [c.key for c in (await run_cases(acts, [crossing], n=2, key=None)).cases] == [crossing.ref]
    keyed = PendingCase(source="a2a", ref="dlg-1", payload={"x": 1}, key="chosen")
    assert [c.key for c in (await run_cases(acts, [keyed], n=3, key=None)).cases] == ["chosen"]
    # A manual run without a key is never a duplicate: each run's case has a key of its own.
    bare = PendingCase(source="manual", ref="manual")
    keys = [(await run_cases(acts, [bare], n=n, key=None, trigger="manual")).cases[0].key for n in (4, 5)]
    assert keys[0] != keys[1]


async def test_new_cases_beyond_one_runs_cap_are_deferred_not_lost(store, acts):
    count = MAX_CASES_PER_RUN + 5
    for i in range(count):
        await post(store, f"e{i}", {"case_id": f"c{i}"})
    pending = [event(f"e{i}") for i in range(count)] + [event("e0")]  # and a duplicate of the first
    found = await run_cases(acts, pending)
    assert [case.key for case in found.cases] == [f"c{i}" for i in range(MAX_CASES_PER_RUN)]
    assert found.deferred == list(range(MAX_CASES_PER_RUN, count))
    assert (found.truncated, found.duplicates, found.total) == (True, 1, count + 1)


async def test_a_poll_keys_rows_by_record_and_writes_the_empty_receipt(store, acts):
    request = TaskPollRequest(tick=tick(1, "heartbeat"), skill="_internal_app_records", tool="query",
                              params={"record_type": "case"}, dedupe_key=None, ttl_hours=24)
    empty = await ActivityEnvironment().run(acts.task_poll, request)
    assert (empty.cases, empty.receipt_written) == ([], True)
    for case_id in ("c1", "c2"):
        await store.records.put(tenant=TENANT, app=APP, record_type="case", record_id=case_id, data={"n": case_id})
    found = await ActivityEnvironment().run(acts.task_poll, request.model_copy(update={"tick": tick(2, "heartbeat")}))
    assert sorted(case.key for case in found.cases) == ["case:c1", "case:c2"] and found.deferred == []
    assert [(r["reason"], r["cases"]) for r in await receipts(store)] == [("prefilter_empty", 0)]
