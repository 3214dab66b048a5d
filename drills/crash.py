"""Crash drills: a real dev server (SQLite file), a real worker subprocess, the real OpenAI SDK against
the loopback provider server (drills/provider_server.py). Each drill SIGKILLs something mid-tick and
counts, from the store: ticks due, ticks completed (receipts), ticks duplicated (a receipt or a
side effect more than once), and checks the heartbeat is still active with no failure counted.

    rig = Rig(folder); await rig.start()
    result = await drill_kill_during_llm_call(rig)
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from client.jobs import create_task
from contract.names import heartbeat_workflow_id
from contract.vocabulary import iso_utc
from drills.database import drill_database_outage
from drills.provider_server import Reply, text_reply, tool_reply
from drills.rig import MANIFEST, DrillResult, Rig
from manifest.loader import parse_manifest
from schedule import next_fire


async def _finish(rig: Rig, result: DrillResult, tenant: str, heartbeat: str, due: int) -> None:
    """Restart the worker, wait for `due` receipts, count them and check the heartbeat is healthy."""
    rig.start_worker()
    await rig.wait_for(lambda: _count_at_least(rig, tenant, heartbeat, due))
    await asyncio.sleep(1.0)  # a duplicate would show up now
    receipts = await rig.receipts(tenant, heartbeat)
    result.due = due
    result.completed = min(len(receipts), due)
    result.duplicated += max(0, len(receipts) - due)
    bad = [r for r in receipts if r.outcome not in ("suppressed", "substantive", "skipped")]
    if bad:
        result.problems.append(f"receipts not completed: {[(r['outcome'], r['reason'], r['error']) for r in bad]}")
    view = await rig.status(heartbeat)
    if view["status"] != "active" or view["failure_count"] != 0:
        result.problems.append(f"heartbeat {view['status']} with failure_count {view['failure_count']}")


async def _count_at_least(rig: Rig, tenant: str, heartbeat: str, count: int) -> bool:
    return len(await rig.receipts(tenant, heartbeat)) >= count


async def drill_kill_during_prefilter(rig: Rig) -> DrillResult:
    """SIGKILL while the pre-filter (a local activity, here a slow LOW skill) is running."""
    result, started = DrillResult("worker SIGKILL during the pre-filter"), time.monotonic()
    heartbeat = await rig.install("prefilter", skill="drill", tool="slow", params="{}")
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    for marker in rig.markers.glob("prefilter-*"):
        marker.unlink()
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")
    if not await rig.wait_for(lambda: _has_marker(rig), timeout=30):
        result.problems.append("the pre-filter never started")
    rig.kill_worker()
    await _finish(rig, result, "prefilter", heartbeat, due=1)
    result.seconds = time.monotonic() - started
    return result


async def _has_marker(rig: Rig) -> bool:
    return any(rig.markers.glob("prefilter-*"))


async def drill_kill_during_llm_call(rig: Rig) -> DrillResult:
    """SIGKILL while the agent's LLM call is waiting on the provider."""
    result, started = DrillResult("worker SIGKILL during an LLM call"), time.monotonic()
    heartbeat = await rig.install("llm")
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK", delay=3.0)
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")

    async def llm_in_flight() -> bool:
        return len(rig.provider.requests_to("openai")) >= 1

    if not await rig.wait_for(llm_in_flight, timeout=30):
        result.problems.append("the LLM call never started")
    rig.kill_worker()
    await _finish(rig, result, "llm", heartbeat, due=1)
    result.seconds = time.monotonic() - started
    return result


async def drill_kill_between_tool_and_llm(rig: Rig) -> DrillResult:
    """SIGKILL after a tool call's side effects (outbox row, kv write), before the next LLM call ends."""
    result, started = DrillResult("worker SIGKILL between tool call and LLM call"), time.monotonic()
    heartbeat = await rig.install("tools")
    rig.provider.reset()
    rig.provider.script_openai(tool_reply(
        ("call_mail", "email__send", {"to": "ada@example.com", "subject": "Follow-up", "body": "Hi"}),
        ("call_kv", "kv__set", {"key": "touch:ada", "value": {"n": 1}})))
    rig.provider.fallback = text_reply("Sent Ada the follow-up.", delay=3.0)
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")

    async def effects_done() -> bool:
        outbox = await rig.store.outbox.list(tenant="tools", app="drills")
        kv = await rig.store.kv.get(tenant="tools", app="drills", key="touch:ada")
        return bool(outbox) and kv is not None and len(rig.provider.requests_to("openai")) >= 2

    if not await rig.wait_for(effects_done, timeout=30):
        result.problems.append("the tool calls never completed")
    rig.kill_worker()
    await _finish(rig, result, "tools", heartbeat, due=1)
    outbox = await rig.store.outbox.list(tenant="tools", app="drills")
    result.duplicated += max(0, len(outbox) - 1)
    if len(outbox) != 1:
        result.problems.append(f"{len(outbox)} outbox rows (expected exactly 1)")
    tool_calls = [r for r in rig.provider.requests_to("openai")]
    if len(tool_calls) < 2:
        result.problems.append("the LLM call after the tools never happened")
    result.seconds = time.monotonic() - started
    return result


async def drill_kill_during_runtime_task(rig: Rig) -> DrillResult:
    """SIGKILL in the middle of a runtime task's turn, after its tool call sent an email and while
    the next LLM call waits: after the restart the run completes once, the email went out once,
    and the one-shot's row says done."""
    result, started = DrillResult("worker SIGKILL during a runtime task's turn"), time.monotonic()
    await rig.install("job")
    assert rig.client is not None and rig.store is not None
    rig.provider.reset()
    rig.provider.script_openai(tool_reply(
        ("call_mail", "email__send", {"to": "ada@example.com", "subject": "Reminder", "body": "Hi"})))
    rig.provider.fallback = text_reply("Reminded Ada.", delay=3.0)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    created = await create_task(rig.client, rig.store, tenant="job", app="drills", agent="bot", key="remind-ada",
                                prompt="Remind Ada of the demo.", at=soon)
    job = created.task.workflow_id

    async def email_sent() -> bool:
        return bool(await rig.store.outbox.list(tenant="job", app="drills")) and \
            len(rig.provider.requests_to("openai")) >= 2

    if not await rig.wait_for(email_sent, timeout=30):
        result.problems.append("the runtime task's tool call never completed")
    rig.kill_worker()
    rig.start_worker()
    await rig.wait_for(lambda: _count_at_least(rig, "job", job, 1))
    await asyncio.sleep(1.0)  # a duplicate would show up now
    receipts = await rig.receipts("job", job)
    outbox = await rig.store.outbox.list(tenant="job", app="drills")
    row = await rig.store.runtime_tasks.get(tenant="job", app="drills", agent="bot", key="remind-ada")
    result.due, result.completed = 1, min(len(receipts), 1)
    result.duplicated = max(0, len(receipts) - 1) + max(0, len(outbox) - 1)
    if [r.outcome for r in receipts] != ["substantive"]:
        result.problems.append(f"receipts {[(r.outcome, r.reason, r.error) for r in receipts]}")
    if len(outbox) != 1:
        result.problems.append(f"{len(outbox)} outbox rows (expected exactly 1)")
    if row is None or row.status != "done":
        result.problems.append(f"the runtime task's row is {row.status if row else 'missing'}, not done")
    result.seconds = time.monotonic() - started
    return result


async def drill_kill_after_the_provider_answered(rig: Rig) -> DrillResult:
    """SIGKILL between the provider's answer and the LLM activity's completion (its ledger write held
    back by a lock on the store): the retried call is recorded in the spend ledger once."""
    result, started = DrillResult("worker SIGKILL after the provider answered (spend ledger)"), time.monotonic()
    heartbeat = await rig.install("ledger", budget="budget: {daily_usd: 10}")
    assert rig.store is not None
    rig.provider.reset()
    database = rig.folder / "store.db"
    held: list[sqlite3.Connection] = []

    def answer_then_hold_the_store(_request: object) -> Reply:
        # Runs in the provider server as it answers: from now on the worker's settlement waits.
        if not held:
            lock = sqlite3.connect(database, timeout=30, isolation_level=None, check_same_thread=False)
            lock.execute("BEGIN IMMEDIATE")
            held.append(lock)
        return text_reply("HEARTBEAT_OK", tokens_in=5_000, tokens_out=20)

    rig.provider.fallback = answer_then_hold_the_store
    assert rig.client is not None
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")

    async def answered() -> bool:
        return bool(held)

    if not await rig.wait_for(answered, timeout=30):
        result.problems.append("the provider was never called")
    await asyncio.sleep(1.0)  # the worker has the answer and waits on the store
    rig.kill_worker()
    for lock in held:
        lock.execute("ROLLBACK")
        lock.close()
    await _finish(rig, result, "ledger", heartbeat, due=1)
    rows = await rig.store.spend.calls(tenant="ledger", workflow_id=heartbeat)
    calls = len(rig.provider.requests_to("openai"))
    if len(rows) != 1 or rows[0]["status"] != "settled" or rows[0]["nano_usd"] is None:
        result.problems.append(f"ledger rows {[(r['call_key'], r['status'], r['nano_usd']) for r in rows]}"
                               " (expected one settled row)")
        result.duplicated += max(0, len(rows) - 1)
    if calls < 2:
        result.problems.append(f"{calls} provider call(s): the retry never called again")
    result.seconds = time.monotonic() - started
    return result


async def drill_restart_server(rig: Rig, heartbeats: dict[str, str]) -> DrillResult:
    """Stop the dev server (SQLite file kept) with the worker running, start it again: every heartbeat
    is still running, every receipt is still there, and a new tick of each completes exactly once."""
    result, started = DrillResult("dev server restart (SQLite file kept)"), time.monotonic()
    before = {tenant: await rig.receipts(tenant, hb) for tenant, hb in heartbeats.items()}
    await rig.stop_server()
    await asyncio.sleep(2.0)
    await rig.start_server()
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    for heartbeat in heartbeats.values():
        described = await rig.client.get_workflow_handle(heartbeat).describe()
        if described.status is None or described.status.name != "RUNNING":
            result.problems.append(f"{heartbeat} is {described.status} after the restart")
        await rig.client.get_workflow_handle(heartbeat).signal("run_now")
    result.due = len(heartbeats)
    for tenant, heartbeat in heartbeats.items():
        want = len(before[tenant]) + 1
        await rig.wait_for(lambda t=tenant, h=heartbeat, w=want: _count_at_least(rig, t, h, w))
    await asyncio.sleep(1.0)
    for tenant, heartbeat in heartbeats.items():
        after = await rig.receipts(tenant, heartbeat)
        lost = {r.tick_id for r in before[tenant]} - {r.tick_id for r in after}
        if lost:
            result.problems.append(f"{heartbeat}: receipts lost {sorted(lost)}")
        new = len(after) - len(before[tenant])
        result.completed += min(new, 1)
        result.duplicated += max(0, new - 1)
        view = await rig.status(heartbeat)
        if view["status"] != "active" or view["failure_count"] != 0:
            result.problems.append(f"{heartbeat}: {view['status']} with failure_count {view['failure_count']}")
    result.seconds = time.monotonic() - started
    return result



async def drill_server_down_across_due_times(rig: Rig) -> DrillResult:
    """Stop the dev server (SQLite file kept) across two due times of a 5-minute heartbeat. When it
    is back exactly one catch-up tick runs, for the first missed due time, and the next due time is
    back on the grid: no burst. Takes about 7 minutes of wall time."""
    result, started = DrillResult("server down across 2 due times"), time.monotonic()
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    spec = parse_manifest(MANIFEST.format(skill="_internal_app_records", tool="query", params="{record_type: kpi}",
                                          interval=5)).agents[0].heartbeats[0]
    now = datetime.now(UTC)
    # A tenant whose salted 5-minute grid is due 40-100 s from now, so the outage starts before it.
    tenant = next(t for t in (f"catchup{i}" for i in range(100_000))
                  if timedelta(seconds=40) <= next_fire(spec, tenant_id=t, after=now) - now <= timedelta(seconds=100))
    first_due = next_fire(spec, tenant_id=tenant, after=now)
    assert first_due is not None
    heartbeat = await rig.install(tenant, interval=5)

    async def timer_set() -> bool:
        return (await rig.status(heartbeat))["next_run"] == iso_utc(first_due)

    if not await rig.wait_for(timer_set, timeout=30):
        result.problems.append("the first due time was never scheduled")
    await rig.stop_server()
    second_due = first_due + timedelta(minutes=5)
    await asyncio.sleep(max(0.0, (second_due - datetime.now(UTC)).total_seconds()) + 15)
    await rig.start_server()
    result.due = 1  # one catch-up for the two missed due times
    await rig.wait_for(lambda: _count_at_least(rig, tenant, heartbeat, 1))
    await asyncio.sleep(5.0)  # a burst of catch-ups would show up now
    receipts = await rig.receipts(tenant, heartbeat)
    result.completed = min(len(receipts), 1)
    result.duplicated = max(0, len(receipts) - 1)
    if receipts and iso_utc(receipts[-1].at) != iso_utc(first_due):
        result.problems.append(f"catch-up tick at {receipts[-1]['at']}, expected the first missed due {iso_utc(first_due)}")
    expected_next = next_fire(spec, tenant_id=tenant, after=datetime.now(UTC))
    view = await rig.status(heartbeat)
    if expected_next is None or view["next_run"] != iso_utc(expected_next):
        result.problems.append(f"next_run {view['next_run']}, expected the grid's {expected_next}")
    if view["status"] != "active" or view["failure_count"] != 0:
        result.problems.append(f"heartbeat {view['status']} with failure_count {view['failure_count']}")
    result.seconds = time.monotonic() - started
    return result


async def run_crash_drills(folder: Path, *, names: list[str] | None = None,
                           report: Callable[[str], None] = print) -> list[DrillResult]:
    """Run the crash drills in one rig; print one line per drill."""
    rig = Rig(folder)
    await rig.start()
    results: list[DrillResult] = []
    heartbeats: dict[str, str] = {}
    try:
        for name, drill, tenant in (("prefilter", drill_kill_during_prefilter, "prefilter"),
                                    ("llm", drill_kill_during_llm_call, "llm"),
                                    ("tool", drill_kill_between_tool_and_llm, "tools"),
                                    ("job", drill_kill_during_runtime_task, "job"),
                                    ("ledger", drill_kill_after_the_provider_answered, "ledger")):
            if names and name not in names:
                continue
            results.append(await drill(rig))
            heartbeats[tenant] = heartbeat_workflow_id(tenant, "drills", "bot", "tick")
            report(results[-1].line())
        if not names or "server" in names:
            results.append(await drill_restart_server(rig, heartbeats))
            report(results[-1].line())
        if not names or "catchup" in names:
            results.append(await drill_server_down_across_due_times(rig))
            report(results[-1].line())
    finally:
        await rig.close()
    if not names or "database" in names:
        (folder / "database").mkdir(exist_ok=True)
        results.append(await drill_database_outage(folder / "database"))
        report(results[-1].line())
    return results
