"""Soak: many heartbeats on a real dev server and worker subprocess for a stretch of wall time.

    python -m drills.soak                           # 1,000 heartbeats, 10 minutes (make soak)
    python -m drills.soak --heartbeats 50 --minutes 6

Heartbeats run at the shortest interval the manifest allows (5 minutes), spread over tenants `soak0..`
(each tenant's salt shifts its grid); a third find records (the offline agent wakes and replies), the rest
find nothing (the no-op tick).

What counts as due. A heartbeat's workflow computes its first due time strictly after the moment its
first workflow task runs (that task's `workflow.now()`), so a due time before then can never run.
Installing 1,000 heartbeats takes 10-13 s, and with that many starting at once a workflow's first task
can start seconds after the workflow itself; so each heartbeat is counted from the start of its own
first workflow task (read from the history of its first run), not from when the soak or the install
began. From then until the window end (one minute before the stop, so late-but-fine ticks count) it
reports: ticks due, ticks run (a schedule receipt at that due time), failures, duplicates (two receipts
for one due time), ticks run that were not due, and the largest workflow history. Exit 1 unless
missed ticks, failures, duplicates and not-due ticks are 0.

Lateness. A receipt cannot say how late its tick was: its `at` is the due time, not when it was written,
and `duration_ms` covers only the tick's own work. The workflow history can: the workflow waits for each
due time on a timer whose summary names it ("next tick <due>"), and the tick runs in the workflow task
that completes after that timer fires; that task's start is the tick's `workflow.now()`. Lateness is that
start minus the due time: the timer firing late plus the wait for a worker to pick the task up, not the
pre-filter or agent work that follows. Reported as p50 / p99 / max over the ticks run; a tick run without
a fired timer (its due time had passed when the previous tick ended) has no such start and is reported
as unmeasured rather than guessed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import PayloadConverter

from client.checks import LoadedManifest
from client.sync import install_manifests
from contract.names import heartbeat_workflow_id
from drills.rig import Rig
from manifest.loader import parse_manifest
from manifest.models import HeartbeatSpec
from schedule import next_fire
from store.models import Receipt

PER_TENANT = 100
GRACE = timedelta(minutes=1)
TIMER_SUMMARY = "next tick "  # the workflow's summary of the timer that waits for a due time


def manifest_text(count: int) -> str:
    lines = ["id: soak", "agents:", "  - id: bot", "    heartbeats:"]
    for index in range(count):
        record_type = "kpi" if index % 3 == 0 else "none"
        lines += [f"      - slug: hb{index:03d}", "        skill: _internal_app_records", "        tool: query",
                  f"        params: {{record_type: {record_type}}}", "        interval_minutes: 5"]
    return "\n".join(lines) + "\n"


# --- counting (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Scheduled ticks of one heartbeat, or (added up) of all of them."""

    due: int = 0
    run: int = 0
    failures: int = 0
    duplicates: int = 0
    not_due: int = 0  # schedule receipts at a time inside the window that was not due
    lateness: tuple[float, ...] = ()  # seconds, per tick run whose start the history shows
    missed: tuple[datetime, ...] = ()

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def passed(self) -> bool:
        return self.due > 0 and self.run == self.due and not (self.failures or self.duplicates or self.not_due)


def due_times(spec: HeartbeatSpec, *, tenant: str, began: datetime, until: datetime) -> list[datetime]:
    """The due times a workflow whose first task started at `began` has run by `until`, as the
    workflow computes them: each strictly after the previous one, the first strictly after `began`."""
    times: list[datetime] = []
    due = next_fire(spec, tenant_id=tenant, after=began)
    while due is not None and due <= until:
        times.append(due)
        due = next_fire(spec, tenant_id=tenant, after=due)
    return times


def count_ticks(
    spec: HeartbeatSpec,
    *,
    tenant: str,
    began: datetime,
    window_end: datetime,
    receipts: Iterable[Receipt],
    starts: dict[datetime, datetime],
) -> Tally:
    """Compare one heartbeat's schedule receipts with its due times from `began` to `window_end`.

    `starts` maps a due time to when the tick for it started running (see `tick_starts`).
    """
    due = due_times(spec, tenant=tenant, began=began, until=window_end)
    scheduled = [r for r in receipts if r.trigger == "schedule"]
    at = Counter(r.at for r in scheduled)
    ran = [t for t in due if at[t]]
    expected = set(due)
    return Tally(
        due=len(due),
        run=len(ran),
        failures=sum(1 for r in scheduled if r.outcome == "failed"),
        duplicates=sum(n - 1 for n in at.values()),
        not_due=sum(1 for t in at if t <= window_end and t not in expected),
        lateness=tuple((starts[t] - t).total_seconds() for t in ran if t in starts),
        missed=tuple(t for t in due if not at[t]),
    )


def tick_starts(events: Iterable[HistoryEvent]) -> dict[datetime, datetime]:
    """Due time -> start of the workflow task that ran its tick, for ticks woken by their timer.

    That task is the first one to complete after the timer fired (a task that failed or timed out
    and was retried did not run the tick; its retry did).
    """
    due_of_timer: dict[int, datetime] = {}
    task_started: dict[int, datetime] = {}
    fired: list[datetime] = []
    starts: dict[datetime, datetime] = {}
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            due = _timer_due(event)
            if due is not None:
                due_of_timer[event.event_id] = due
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            due = due_of_timer.get(event.timer_fired_event_attributes.started_event_id)
            if due is not None:
                fired.append(due)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started[event.event_id] = event.event_time.ToDatetime(tzinfo=UTC)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and fired:
            started = task_started.get(event.workflow_task_completed_event_attributes.started_event_id)
            if started is not None:
                for due in fired:
                    starts.setdefault(due, started)
                fired = []
    return starts


def first_task_started(events: Iterable[HistoryEvent]) -> datetime | None:
    """When the first workflow task of a run started: its `workflow.now()`."""
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return event.event_time.ToDatetime(tzinfo=UTC)
    return None


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def lateness_line(tally: Tally) -> str:
    unmeasured = tally.run - len(tally.lateness)
    tail = f"  ({unmeasured} run without a fired timer: unmeasured)" if unmeasured else ""
    if not tally.lateness:
        return "lateness: no tick measured" + tail
    values = tally.lateness
    return (f"lateness (tick began - due time) over {len(values)} ticks: p50 {percentile(values, 0.5):.3f}s  "
            f"p99 {percentile(values, 0.99):.3f}s  max {max(values):.3f}s" + tail)


def _timer_due(event: HistoryEvent) -> datetime | None:
    if not event.user_metadata.HasField("summary"):
        return None
    summary = PayloadConverter.default.from_payload(event.user_metadata.summary, str)
    if not isinstance(summary, str) or not summary.startswith(TIMER_SUMMARY):
        return None
    return _instant(summary.removeprefix(TIMER_SUMMARY))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the soak ----------------------------------------------------------------------------------


async def run_histories(client: Client, heartbeat: str) -> list[list[HistoryEvent]]:
    """The events of every run of a heartbeat's workflow, first run first (continue-as-new chain)."""
    description = await client.get_workflow_handle(heartbeat).describe()
    run_id = description.raw_description.workflow_execution_info.first_run_id or description.run_id
    runs: list[list[HistoryEvent]] = []
    while run_id:
        events = list((await client.get_workflow_handle(heartbeat, run_id=run_id).fetch_history()).events)
        runs.append(events)
        run_id = next((e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id for e in events
                       if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW), "")
    return runs


async def soak(folder: Path, *, heartbeats: int, minutes: float) -> int:
    rig = Rig(folder)
    await rig.start()
    try:
        assert rig.client is not None and rig.store is not None
        tenants = [f"soak{i}" for i in range((heartbeats + PER_TENANT - 1) // PER_TENANT)]
        specs: dict[str, tuple[str, HeartbeatSpec]] = {}
        started = datetime.now(UTC)
        for number, tenant in enumerate(tenants):
            count = min(PER_TENANT, heartbeats - number * PER_TENANT)
            manifest = parse_manifest(manifest_text(count))
            await rig.store.tenants.upsert(tenant=tenant, timezone="UTC", provider="offline")
            await rig.store.records.put(tenant=tenant, app="soak", record_type="kpi", record_id="signups",
                                       data={"metric": "signups", "value": 182})
            await install_manifests(rig.client, rig.store, [LoadedManifest(Path(f"{tenant}.yaml"), manifest)],
                                    tenant=tenant)
            for spec in manifest.agents[0].heartbeats:
                specs[heartbeat_workflow_id(tenant, "soak", "bot", spec.slug)] = (tenant, spec)
        installed = datetime.now(UTC)
        print(f"installed {len(specs)} heartbeats for {len(tenants)} tenants in "
              f"{(installed - started).total_seconds():.1f}s; soaking {minutes:g} min", flush=True)
        end = started + timedelta(minutes=minutes)
        while datetime.now(UTC) < end:
            await asyncio.sleep(min(30.0, max(0.0, (end - datetime.now(UTC)).total_seconds())))
            print(f"  {datetime.now(UTC):%H:%M:%S} ...", flush=True)
        window_end = end - GRACE
        total, largest, began_at = Tally(), (0, ""), []
        missed: list[tuple[str, datetime]] = []
        for heartbeat, (tenant, spec) in specs.items():
            runs = await run_histories(rig.client, heartbeat)
            # A workflow whose first task never ran is counted from its start: all its ticks are missed.
            began = first_task_started(runs[0]) or runs[0][0].event_time.ToDatetime(tzinfo=UTC)
            began_at.append(began)
            receipts = await rig.store.receipts.list(tenant=tenant, heartbeat_id=heartbeat, limit=1000)
            starts = tick_starts(event for events in runs for event in events)
            tally = count_ticks(spec, tenant=tenant, began=began, window_end=window_end, receipts=receipts,
                                starts=starts)
            total += tally
            missed += [(heartbeat, due) for due in tally.missed]
            largest = max(largest, *((len(events), heartbeat) for events in runs))
        print(f"workflows began {(min(began_at) - started).total_seconds():.1f}s to "
              f"{(max(began_at) - started).total_seconds():.1f}s after the install began; "
              "each is counted from its own start")
        print(f"ticks due {total.due}  ticks run {total.run}  failures {total.failures}  "
              f"duplicates {total.duplicates}  not due but run {total.not_due}  "
              f"largest history {largest[0]} events ({largest[1]})")
        print(lateness_line(total))
        for heartbeat, due in missed[:10]:
            print(f"  missed {heartbeat} due {due:%H:%M:%S}")
        print("soak passed" if total.passed else "soak FAILED")
        return 0 if total.passed else 1
    finally:
        await rig.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drills.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeats", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        started = time.monotonic()
        code = asyncio.run(soak(Path(folder), heartbeats=args.heartbeats, minutes=args.minutes))
        print(f"wall time {time.monotonic() - started:.0f}s")
    sys.exit(code)


if __name__ == "__main__":
    main()
