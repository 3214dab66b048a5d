"""A task's cases: what a firing brought, each with its key, minus those already processed.

TASK_POLL (a heartbeat trigger): the pre-filter's rows are the cases. TASK_CASES (the schedule and
the pushed triggers): an event's body is read from the store by its id, a crossing's and a
delegation's come with the case. Either way, before any LLM call:

- each case gets its key: the value at the task's `dedupe.key` path in the case, else the
  trigger's own key (the event's id, the row's `record_type:id`, the crossing's `metric@time`, the
  delegation's id, the due time; a manual run without a key gets one of its own: never a duplicate);
- cases whose key the task processed within its TTL are dropped, and so is a second case with the
  key of an earlier one in the same firing; a manual run with `force` keeps them all;
- what is left is capped for history (MAX_CASES_PER_RUN cases, bytes, each body's length); new pushed
  cases beyond the cap are deferred: the workflow queues them again for its next run. Nothing left: the activity
  writes the `skipped / prefilter_empty` or `skipped / duplicate` receipt itself, as a heartbeat's
  pre-filter does, so the common no-op firing costs one activity.

Keys are marked processed only when the run completes (complete_tick, in its transaction).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.prefilter import Source, cap_rows, find_rows
from contract.messages import (
    MAX_CASE_BODY_CHARS,
    MAX_CASES_PER_RUN,
    TaskCase,
    TaskCases,
    TaskCasesRequest,
    TaskPollRequest,
    TickRef,
)
from contract.task import case_key
from skills.registry import SkillRegistry
from store.store import Store


async def run_task_poll(store: Store, skills: SkillRegistry, request: TaskPollRequest, *,
                        now: datetime | None = None) -> TaskCases:
    """The heartbeat trigger's pre-filter rows as cases, minus those already processed."""
    started = time.monotonic()
    tick = request.tick
    now = now or max(datetime.now(UTC), tick.at)
    rows = await find_rows(store, skills, tick, Source(request.skill, request.tool, request.params), now=now)
    cases = [Case(case_key(row.body, request.dedupe_key, default=row.key), row.body) for row in rows]
    return await _new_cases(store, tick, cases, ttl_hours=request.ttl_hours, force=False, now=now, started=started,
                            reason_when_none="prefilter_empty")


async def run_task_cases(store: Store, request: TaskCasesRequest, *, now: datetime | None = None) -> TaskCases:
    """The schedule's or the pushed triggers' cases (event bodies read from the store), minus those
    already processed (unless a manual run forces them)."""
    started = time.monotonic()
    tick = request.tick
    now = now or max(datetime.now(UTC), tick.at)
    event_ids = [case.ref for case in request.cases if case.source == "event"]
    bodies = await store.events.bodies(tenant=tick.tenant, app=tick.app, event_ids=event_ids) if event_ids else {}
    cases: list[Case] = []
    for index, pending in enumerate(request.cases):
        if pending.source == "event" and pending.ref not in bodies:
            activity.logger.warning("%s: event %s is not in the store; skipped", tick.heartbeat_id, pending.ref)
            continue
        body = bodies[pending.ref] if pending.source == "event" else pending.payload
        default = pending.ref if pending.source != "manual" else f"manual:{tick.tick_id}/{index}"
        cases.append(Case(pending.key or case_key(body, request.dedupe_key, default=default),
                          {} if body is None else body, index))
    force = any(case.force for case in request.cases)
    return await _new_cases(store, tick, cases, ttl_hours=request.ttl_hours, force=force, now=now, started=started,
                            reason_when_none="duplicate")


def cap_body(body: Any) -> Any:
    """The body as it may enter history: whole when its JSON fits MAX_CASE_BODY_CHARS, else cut."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) <= MAX_CASE_BODY_CHARS:
        return body
    return {"truncated": True, "chars": len(text), "excerpt": text[: MAX_CASE_BODY_CHARS - 100]}


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    body: Any
    position: int | None = None  # in a pushed firing's cases; None for a poll's row


async def _new_cases(store: Store, tick: TickRef, cases: list[Case], *, ttl_hours: int, force: bool,
                     now: datetime, started: float, reason_when_none: str) -> TaskCases:
    seen = set() if force else await store.dedupe.seen(tenant=tick.tenant, task_id=tick.heartbeat_id,
                                                        keys=[case.key for case in cases], now=now)
    kept: dict[str, Case] = {}
    duplicates = 0
    for case in cases:
        if case.key in seen or case.key in kept:
            duplicates += 1
        else:
            kept[case.key] = case
    new = list(kept.values())
    pushed = any(case.position is not None for case in new)
    # A poll's rows are capped by bytes and rows alone; pushed cases by MAX_CASES_PER_RUN as well.
    capped, truncated = cap_rows([{"key": case.key, "case": cap_body(case.body)}
                                  for case in (new[:MAX_CASES_PER_RUN] if pushed else new)])
    # New pushed cases that did not fit go back to the workflow's queue; a poll finds its rows again.
    deferred = [case.position for case in new[len(capped):] if case.position is not None]
    found = TaskCases(cases=[TaskCase(key=row["key"], body=row["case"]) for row in capped], total=len(cases),
                      duplicates=duplicates, truncated=truncated or len(new) > len(capped), deferred=deferred,
                      forced=force)
    activity.logger.info("%s tick %s: %d case(s), %d duplicate(s), %d new, %d deferred", tick.heartbeat_id,
                         tick.tick_id, len(cases), duplicates, len(capped), len(deferred))
    if capped:
        return found
    reason = "prefilter_empty" if not cases and reason_when_none == "prefilter_empty" else "duplicate"
    await store.receipts.add(
        tenant=tick.tenant, heartbeat_id=tick.heartbeat_id, tick_id=tick.tick_id, at=tick.at, trigger=tick.trigger,
        outcome="skipped", reason=reason, rows=len(cases), cases=len(cases), duplicates=duplicates,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return found.model_copy(update={"receipt_written": True})
