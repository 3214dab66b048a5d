"""Heartbeat benchmarks: tick capacity and lateness (ours with no-op ticks and with 10% substantive
ones, Temporal Schedules, a 15 s poller), history cost, sync throughput, idle memory, SQLite
pragmas. `make bench-quick` (< 5 min) / `make bench`.

    .venv/bin/python bench/run.py --quick
    .venv/bin/python bench/run.py                 # full: larger ramps, 10,000-heartbeat sync

Every phase starts its own dev server (free ports, a temp database, the WAL pragmas of
temporal-dev.yaml) and runs the product's worker (worker.build_worker with the production
WorkerSettings from the environment) in this process. Prints a table; writes bench/results/latest.json. Method: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import machine_facts, proc_cpu_s, proc_rss_mib  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import (  # noqa: E402
    Client,
    Interceptor,
    OutboundInterceptor,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

import worker as product_worker  # noqa: E402
from activities.heartbeat_activities import HeartbeatActivities  # noqa: E402
from bench_workflows import ScheduledTickWorkflow  # noqa: E402
from client.local_server import DevServerConfig, running_dev_server_async  # noqa: E402
from contract.heartbeat import HeartbeatConfig, HeartbeatInput, HeartbeatState  # noqa: E402
from contract.messages import PrefilterRequest, PrefilterResult  # noqa: E402
from contract.names import PREFILTER, TASK_QUEUE  # noqa: E402
from manifest.app import AppManifest  # noqa: E402
from manifest.models import HeartbeatSpec  # noqa: E402
from schedule.fires import tenant_salt  # noqa: E402
from skills.catalog import default_registry  # noqa: E402
from store import open_store  # noqa: E402
from workflows.heartbeat import HeartbeatWorkflow  # noqa: E402

WORKER_SETTINGS = product_worker.WorkerSettings.from_env()  # HEARTBEATS_WORKFLOW_SANDBOX=on to compare
OURS_NOOP, OURS_MIX = "ours-noop", "ours-mix"  # HeartbeatWorkflow: no-op ticks; 10% substantive
WARM_GAP_S = 3.0  # between the warm-up round's last tick and the measured round's first
MIX_SUBSTANTIVE_SHARE = 0.1
INTERVAL_S = 300  # 5-minute heartbeats: salts spread phases over 300 s
P99_TARGET_S = 1.0
RESULTS = ROOT / "bench" / "results" / "latest.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------ measuring activity wrapper


@dataclass
class Probe:
    """Pre-filter starts seen by the worker: (heartbeat id, due epoch s) -> start epoch s."""

    starts: dict[tuple[str, int], float] = field(default_factory=dict)

    def seen(self, expected: list[tuple[str, float]]) -> dict[str, tuple[float, float]]:
        """Of the (heartbeat id, due) ticks expected, those that ran: id -> (due, pre-filter start)."""
        return {hid: (due, self.starts[(hid, round(due))]) for hid, due in expected if (hid, round(due)) in self.starts}


class TimedActivities(HeartbeatActivities):
    """The product's activities; the pre-filter notes its start time before running unchanged."""

    def __init__(self, store, skills, probe: Probe) -> None:
        super().__init__(store, skills)
        self.probe = probe

    @activity.defn(name=PREFILTER)
    async def prefilter(self, request: PrefilterRequest) -> PrefilterResult:
        started = time.time()
        self.probe.starts.setdefault((request.tick.heartbeat_id, round(request.tick.at.timestamp())), started)
        return await super().prefilter(request)


class Env:
    """A dev server + the product worker (with the probe) + a store, for one phase."""

    def __init__(self, folder: Path, name: str, *, extra_workflows: bool = False, client_interceptors=()) -> None:
        self.folder, self.name, self.extra, self.interceptors = folder, name, extra_workflows, list(client_interceptors)
        self.probe = Probe()

    async def __aenter__(self) -> Env:
        config = DevServerConfig(port=free_port(), ui_port=free_port(), headless=True, log_level="error",
                                 db_filename=str(self.folder / f"{self.name}-temporal.db"),
                                 sqlite_pragmas={"journal_mode": "wal", "synchronous": "normal"})
        self._server_cm = running_dev_server_async(config, quiet=True)
        self.server = await self._server_cm.__aenter__()
        self.client = await Client.connect(self.server.address, namespace=self.server.namespace,
                                           interceptors=self.interceptors, data_converter=pydantic_data_converter)
        self.store = await open_store(f"sqlite:///{self.folder / (self.name + '-store.db')}")
        activities = TimedActivities(self.store, default_registry(), self.probe)
        # The product's worker with its production settings; the peers' short workflow runs on it too.
        worker = product_worker.build_worker(self.client, activities, settings=WORKER_SETTINGS,
                                             extra_workflows=[ScheduledTickWorkflow] if self.extra else ())
        self.worker = worker
        self._worker_task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.worker.shutdown()
        self._worker_task.cancel()
        await self.store.close()
        await self._server_cm.__aexit__(*exc)

    def usage(self) -> tuple[float, float, float, float]:
        pid = self.server.pid
        return proc_cpu_s(pid), proc_rss_mib(pid), proc_cpu_s(os.getpid()), proc_rss_mib(os.getpid())


async def bounded(n: int, thunks) -> list:
    sem = asyncio.Semaphore(n)

    async def one(t):
        async with sem:
            return await t()

    return await asyncio.gather(*(one(t) for t in thunks))


# ---------------------------------------------------------------------------------- heartbeat specs


def spec(slug: str = "tick", record_type: str = "item") -> HeartbeatSpec:
    return HeartbeatSpec.model_validate({"slug": slug, "skill": "_internal_app_records", "tool": "query",
                                         "params": {"record_type": record_type}, "interval_minutes": 5,
                                         "conversation_mode": "isolated"})


def tenants_due_in(t0: float, window: float, count: int, prefix: str) -> list[tuple[str, float]]:
    """`count` tenant ids whose salted 5-minute grid has a due time in [t0, t0+window), with that time."""
    out, j = [], 0
    while len(out) < count:
        tenant = f"{prefix}{j}"
        j += 1
        salt = tenant_salt(tenant, 5)
        due = salt + INTERVAL_S * -(-(t0 - salt) // INTERVAL_S)  # first grid point >= t0
        if due < t0 + window:
            out.append((tenant, due))
    return out


def config_for(tenant: str) -> HeartbeatConfig:
    return HeartbeatConfig(tenant=tenant, app="bench", agent="agent", heartbeat=spec())


async def seed_substantive(env: Env, tenants: list[str]) -> None:
    for tenant in tenants:
        await env.store.tenants.upsert(tenant=tenant, provider="offline")
        await env.store.records.put(tenant=tenant, app="bench", record_type="item", record_id="one",
                                   data={"note": "something to look at"})


# --------------------------------------------------------------------------- (1)/(2a)/(2b) tick runs


@dataclass
class Step:
    variant: str
    offered: float
    n: int
    window: float
    lateness: list[float]
    completed: int
    start_rate: float
    server_cpu: float
    server_rss: float
    worker_cpu: float
    worker_rss: float
    substantive: int = 0
    started_late: bool = False
    breakdown: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self):
        return pct(self.lateness, 0.5)

    @property
    def p99(self):
        return pct(self.lateness, 0.99)

    @property
    def ok(self) -> bool:
        return bool(self.lateness) and self.completed >= 0.99 * self.n and self.p99 <= P99_TARGET_S

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "offered_ticks_per_s": self.offered, "heartbeats": self.n,
                "window_s": self.window, "due": self.n, "completed": self.completed,
                "substantive": self.substantive,
                "p50_lateness_s": _r(self.p50), "p99_lateness_s": _r(self.p99),
                "max_lateness_s": _r(max(self.lateness) if self.lateness else None),
                "start_rate_per_s": round(self.start_rate, 1), "server_cpu_cores": round(self.server_cpu, 2),
                "server_rss_mib": round(self.server_rss), "worker_cpu_cores": round(self.worker_cpu, 2),
                "worker_rss_mib": round(self.worker_rss), "started_late": self.started_late,
                "p99_within_target": self.ok, "lateness_breakdown_p50_s": self.breakdown}


def _r(x):
    return None if x is None else round(x, 3)


async def tick_step(folder: Path, variant: str, rate: float, window: float, *, start_rate_guess: float,
                    substantive_share: float = 0.0, history_out: dict | None = None) -> Step:
    """One load level on a fresh server: N = rate × window heartbeats, each due once in the window."""
    n = max(1, round(rate * window))
    ours = variant in (OURS_NOOP, OURS_MIX)
    ahead = window + WARM_GAP_S if ours else 0.0  # ours: a warm-up round of one window before the measured one
    async with Env(folder, f"{variant}-{rate:g}-{uuid.uuid4().hex[:4]}", extra_workflows=not ours) as env:
        lead = 4.0 + n / start_rate_guess * 1.3 + ahead  # room for the starts and the warm-up round
        t0 = float(int(time.time() + lead))
        chosen = tenants_due_in(t0, window, n, prefix=f"t{variant.replace('-', '')[:6]}{int(rate)}x")
        configs = [config_for(t) for t, _ in chosen]
        subst = {c.tenant for i, c in enumerate(configs) if substantive_share and i % round(1 / substantive_share) == 0}
        await seed_substantive(env, sorted(subst))
        before_start = time.monotonic()
        if ours:
            thunks = heartbeat_starts(env, configs, [due for _, due in chosen])
        elif variant == "schedules":
            thunks = [lambda c=c: env.client.create_schedule(
                f"sched:{c.workflow_id}",
                Schedule(action=ScheduleActionStartWorkflow(ScheduledTickWorkflow.run, args=[c, None],
                                                            id=f"tick:{c.workflow_id}", task_queue=TASK_QUEUE),
                         spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
                             every=timedelta(seconds=INTERVAL_S),
                             offset=timedelta(seconds=tenant_salt(c.tenant, 5)))]))) for c in configs]
        else:
            thunks = []
        await bounded(32, thunks)
        start_rate = len(thunks) / max(time.monotonic() - before_start, 1e-3) if thunks else 0.0
        warm = None
        if ours:
            await wait_worker_quiet(t0 - ahead - 0.5)  # every new workflow's first task done
            warm = asyncio.create_task(warm_round(env, configs, [due for _, due in chosen], ahead))
        started_late = time.time() > t0 - ahead
        if started_late:
            print(f"    warning: set-up ended {time.time() - (t0 - ahead):.1f}s after the first "
                  f"{'warm-up tick' if ours else 'due time'}", file=sys.stderr)
        poller = None
        if variant == "poller":
            poller = asyncio.create_task(poll_loop(env, folder, chosen, configs, t0 + window + 20))
        await asyncio.sleep(max(0.0, t0 - time.time()))
        c0 = env.usage()
        w0 = time.monotonic()
        grace = 20.0 if variant == "poller" else 5.0
        await asyncio.sleep(window + grace)
        c1 = env.usage()
        elapsed = time.monotonic() - w0
        if poller:
            poller.cancel()
        if warm:
            await warm
        seen = env.probe.seen([(c.workflow_id, due) for c, (_, due) in zip(configs, chosen, strict=True)])
        lateness = [start - due for due, start in seen.values()]
        breakdown = await lateness_breakdown(env, configs, seen) if ours else {}
        if history_out is not None and ours:
            history_out.update(await history_cost(env, configs, subst))
        step = Step(variant, rate, n, window, lateness, len(seen), start_rate,
                    (c1[0] - c0[0]) / elapsed, c1[1], (c1[2] - c0[2]) / elapsed, c1[3], len(subst), started_late,
                    breakdown)
        return step


def heartbeat_starts(env: Env, configs: list[HeartbeatConfig], dues: list[float]) -> list:
    """Thunks starting each heartbeat's workflow with its schedule handled up to just before `due`:
    its first task arms the timer for `due` and runs no tick."""
    return [lambda c=c, due=due: env.client.start_workflow(
        HeartbeatWorkflow.run,
        HeartbeatInput(config=c, state=HeartbeatState(last_due=datetime.fromtimestamp(due - 1, UTC))),
        id=c.workflow_id, task_queue=TASK_QUEUE)
        for c, due in zip(configs, dues, strict=True)]


async def warm_round(env: Env, configs: list[HeartbeatConfig], dues: list[float], ahead: float) -> None:
    """A run-now tick for each heartbeat `ahead` seconds before its due time, at the offered rate.
    Each runs a tick (pre-filter, receipt) and re-arms the timer for `due` in that tick's workflow
    task, as the previous tick of a long-lived heartbeat does, under the same load."""
    pending = []
    for c, due in sorted(zip(configs, dues, strict=True), key=lambda pair: pair[1]):
        await asyncio.sleep(max(0.0, due - ahead - time.time()))
        pending.append(asyncio.create_task(env.client.get_workflow_handle(c.workflow_id).signal(HeartbeatWorkflow.run_now)))
    await asyncio.gather(*pending)


def event_epoch_s(event) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


async def lateness_breakdown(env: Env, configs: list[HeartbeatConfig], seen: dict[str, tuple[float, float]],
                             sample: int = 60) -> dict[str, Any]:
    """Where the lateness of the measured tick goes, from the histories of a sample of heartbeats (p50 s):
    armed = timer's intended fire − due (the previous tick's task completed after the SDK last moved
    workflow time, at its local activity's result); fired = TimerFired −
    intended fire (server timer queue); dispatched = WorkflowTaskStarted − TimerFired (matching, worker
    polling); worker = pre-filter start − WorkflowTaskStarted (worker queueing, local activity)."""
    from temporalio.api.enums.v1 import EventType as E

    parts: dict[str, list[float]] = {"armed": [], "fired": [], "dispatched": [], "worker": []}
    step = max(1, len(configs) // sample)
    for cfg in configs[::step]:
        if cfg.workflow_id not in seen:
            continue
        due, started = seen[cfg.workflow_id]
        events = list((await env.client.get_workflow_handle(cfg.workflow_id).fetch_history()).events)
        intended = None
        for i, e in enumerate(events):
            if e.event_type == E.EVENT_TYPE_TIMER_STARTED:
                duration = e.timer_started_event_attributes.start_to_fire_timeout
                intended = event_epoch_s(e) + duration.seconds + duration.nanos / 1e9
            elif e.event_type == E.EVENT_TYPE_TIMER_FIRED and intended is not None and abs(intended - due) < 60:
                wft = next((x for x in events[i:] if x.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED), None)
                parts["armed"].append(intended - due)
                parts["fired"].append(event_epoch_s(e) - intended)
                if wft is not None:
                    parts["dispatched"].append(event_epoch_s(wft) - event_epoch_s(e))
                    parts["worker"].append(started - event_epoch_s(wft))
                break
    return {k: _r(pct(v, 0.5)) for k, v in parts.items()} | {"sampled": len(parts["armed"])}


async def poll_loop(env: Env, folder: Path, chosen: list[tuple[str, float]], configs: list[HeartbeatConfig],
                    until: float) -> None:
    """A tenant scheduler: a due-rows table, polled every 15 s; each due row starts a short workflow."""
    db = sqlite3.connect(folder / f"poller-{uuid.uuid4().hex[:4]}.db")
    db.execute("CREATE TABLE due (id TEXT PRIMARY KEY, idx INTEGER, next_due REAL)")
    db.execute("CREATE INDEX due_next ON due (next_due)")
    db.executemany("INSERT INTO due VALUES (?, ?, ?)", [(c.workflow_id, i, d) for i, ((_, d), c) in
                                                        enumerate(zip(chosen, configs, strict=True))])
    db.commit()
    while time.time() < until:
        now = time.time()
        rows = db.execute("SELECT id, idx, next_due FROM due WHERE next_due <= ?", (now,)).fetchall()
        await bounded(32, [lambda i=i, d=d: env.client.start_workflow(
            ScheduledTickWorkflow.run, args=[configs[i], datetime.fromtimestamp(d, UTC)],
            id=f"poll:{configs[i].workflow_id}:{int(d)}", task_queue=TASK_QUEUE) for _, i, d in rows])
        db.executemany("UPDATE due SET next_due = next_due + ? WHERE id = ?", [(INTERVAL_S, r[0]) for r in rows])
        db.commit()
        await asyncio.sleep(max(0.0, 15.0 - (time.time() - now)))
    db.close()


async def ramp(folder: Path, variant: str, rates: list[float], window: float, substantive_share: float,
               history_out: dict | None = None) -> list[Step]:
    steps, guess = [], 100.0  # starts per second, refined by each step
    for rate in rates:
        print(f"  {variant}: {rate:g} ticks/s offered over {window:g}s ...", flush=True)
        step = await tick_step(folder, variant, rate, window, start_rate_guess=guess,
                               substantive_share=substantive_share,
                               history_out=history_out if not steps else None)
        if step.start_rate:
            guess = max(10.0, step.start_rate)
        steps.append(step)
        print(f"    p50 {_fmt(step.p50)} p99 {_fmt(step.p99)} completed {step.completed}/{step.n} "
              f"server {step.server_cpu:.2f} cores, worker {step.worker_cpu:.2f} cores", flush=True)
        if step.breakdown:
            print(f"    lateness p50 by stage: {step.breakdown}", flush=True)
        if not step.ok:
            break
    return steps


def _fmt(x):
    return "-" if x is None else f"{x:.3f}s"


def at_rate(steps: list[Step], rate: float | None) -> Step | None:
    return next((s for s in steps if s.offered == rate), None)


def capacity(steps: list[Step]) -> tuple[float | None, bool]:
    """Highest offered rate with p99 ≤ 1 s and ≥ 99% completed; and whether the ramp found the limit."""
    ok = [s.offered for s in steps if s.ok]
    return (max(ok) if ok else None), any(not s.ok for s in steps)


# ------------------------------------------------------------------------------------ (3) history


async def history_cost(env: Env, configs: list[HeartbeatConfig], subst: set[str]) -> dict[str, Any]:
    from temporalio.api.enums.v1 import EventType

    out: dict[str, Any] = {}
    for kind, cfg in (("noop", next(c for c in configs if c.tenant not in subst)),
                      ("substantive", next((c for c in configs if c.tenant in subst), None))):
        if cfg is None:
            continue
        history = await env.client.get_workflow_handle(cfg.workflow_id).fetch_history()
        events = list(history.events)
        timers = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
        fired = next((i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED), None)
        b = next((i for i in timers if fired is not None and i > fired), None)
        if b is None:
            out[f"{kind}_error"] = "no scheduled tick followed by a timer in history"
            continue
        # One scheduled tick: from its timer firing to the next timer (the warm-up round's run-now
        # tick comes before it); before the first timer: what a new run costs.
        a = timers[0]
        tick = events[fired : b + 1]
        out[f"events_per_{kind}_tick"] = len(tick)
        out[f"bytes_per_{kind}_tick"] = sum(e.ByteSize() for e in tick)
        out[f"{kind}_tick_event_types"] = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in tick]
        out[f"initial_events_{kind}"] = a + 1
        out[f"initial_bytes_{kind}"] = sum(e.ByteSize() for e in events[: a + 1])
    if "events_per_noop_tick" in out:
        # Continue-as-new after MAX_TICKS_PER_RUN (500) ticks or when the server suggests it (defaults:
        # 4096 events / 4 MiB... the count suggestion is limit.historyCount.suggestContinueAsNew).
        from contract.heartbeat import MAX_TICKS_PER_RUN

        for kind in ("noop", "substantive"):
            if f"events_per_{kind}_tick" in out:
                ev, by = out[f"events_per_{kind}_tick"], out[f"bytes_per_{kind}_tick"]
                ticks = min(MAX_TICKS_PER_RUN, (4096 - out[f"initial_events_{kind}"]) // ev + 1)
                out[f"can_after_ticks_{kind}"] = ticks
                out[f"history_at_can_events_{kind}"] = out[f"initial_events_{kind}"] + ticks * ev
                out[f"history_at_can_kib_{kind}"] = round((out[f"initial_bytes_{kind}"] + ticks * by) / 1024, 1)
    return out


# ----------------------------------------------------------------------------- (4) sync, (5) idle


class WriteCounter(Interceptor):
    """Counts the client's workflow writes (start / signal / signal-with-start / cancel / terminate)."""

    def __init__(self) -> None:
        self.writes = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Out(OutboundInterceptor):
            async def start_workflow(self, input):
                counter.writes += 1
                return await super().start_workflow(input)

            async def signal_workflow(self, input):
                counter.writes += 1
                return await super().signal_workflow(input)

            async def cancel_workflow(self, input):
                counter.writes += 1
                return await super().cancel_workflow(input)

            async def terminate_workflow(self, input):
                counter.writes += 1
                return await super().terminate_workflow(input)

        return Out(next)


def app_manifest(index: int, per_app: int, time_of_day: str) -> AppManifest:
    return AppManifest.model_validate({
        "id": f"app{index}", "name": f"App {index}", "version": "1.0.0",
        "agents": [{"id": "agent", "name": "Agent", "is_default": True, "system_prompt": "bench",
                    "heartbeats": [{"slug": f"hb{k}", "skill": "_internal_app_records", "tool": "query",
                                    "params": {"record_type": f"r{k}"}, "schedule_type": "daily",
                                    "time_of_day": time_of_day} for k in range(per_app)]}]})


async def sync_bench(folder: Path, apps: int, per_app: int) -> dict[str, Any]:
    from client.checks import LoadedManifest
    from client.sync import apply_plans, plan_manifests, uninstall_apps

    counter = WriteCounter()
    n = apps * per_app
    async with Env(folder, f"sync-{n}", client_interceptors=[counter]) as env:
        await env.store.tenants.upsert(tenant="acme", timezone="UTC")
        far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")  # nothing ticks during the bench
        manifests = [app_manifest(i, per_app, far) for i in range(apps)]
        loaded = [LoadedManifest(Path(f"{m.id}.yaml"), m) for m in manifests]

        async def install_all() -> float:  # what `heartbeats sync` does for a folder of manifests
            t = time.monotonic()
            plans = await plan_manifests(env.store, loaded, tenant="acme")
            planned = time.monotonic()
            await apply_plans(env.client, env.store, plans)
            print(f"    planned in {planned - t:.2f}s, applied in {time.monotonic() - planned:.2f}s", flush=True)
            return time.monotonic() - t

        install_s = await install_all()
        install_writes = counter.writes
        counter.writes = 0
        resync_s = await install_all()
        resync_writes = counter.writes
        counter.writes = 0
        t = time.monotonic()
        await uninstall_apps(env.client, env.store, tenant="acme", apps=[m.id for m in manifests])
        uninstall_s = time.monotonic() - t
        return {"heartbeats": n, "apps": apps, "install_s": round(install_s, 2),
                "install_heartbeats_per_s": round(n / install_s, 1), "install_writes": install_writes,
                "resync_unchanged_s": round(resync_s, 3), "resync_unchanged_writes": resync_writes,
                "resync_heartbeats_per_s": round(n / resync_s, 1), "uninstall_s": round(uninstall_s, 2),
                "uninstall_heartbeats_per_s": round(n / uninstall_s, 1), "uninstall_writes": counter.writes,
}


async def wait_worker_quiet(deadline: float) -> None:
    """Until this process (the worker) uses < 0.1 core over 1 s, or the deadline."""
    while time.time() < deadline:
        c0 = proc_cpu_s(os.getpid())
        await asyncio.sleep(1.0)
        if proc_cpu_s(os.getpid()) - c0 < 0.1:
            return


def cached_workflows(worker) -> int:
    """Workflow instances the worker holds (an SDK internal, read only by this bench), over the
    Workers of its group (only the workflows queue's holds any)."""
    return sum(len(getattr(getattr(one, "_workflow_worker", None), "_running_workflows", ()))
               for one in getattr(worker, "workers", (worker,)))


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc malloc_trim), so RSS counts what
    is live rather than what the start burst's allocations left in the allocator's free lists."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: RSS then includes the allocator's free lists


async def idle_bench(folder: Path, small: int, large: int) -> dict[str, Any]:
    """Worker memory per idle heartbeat: the slope of worker RSS between `small` and `large` cached,
    sleeping heartbeats (daily, due 12 h later), so fixed costs (imports, caches warming) cancel out."""
    async with Env(folder, f"idle-{large}") as env:
        far = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
        heartbeat = HeartbeatSpec.model_validate({"slug": "daily", "skill": "_internal_app_records", "tool": "query",
                                                  "params": {"record_type": "item"}, "schedule_type": "daily",
                                                  "time_of_day": far})
        rss: dict[int, float] = {}
        cached: dict[int, int] = {}
        started = 0
        for count in (small, large):
            configs = [HeartbeatConfig(tenant=f"idle{i}", app="bench", agent="agent", heartbeat=heartbeat)
                       for i in range(started, count)]
            await bounded(32, [lambda c=c: env.client.start_workflow(
                HeartbeatWorkflow.run, HeartbeatInput(config=c), id=c.workflow_id, task_queue=TASK_QUEUE)
                for c in configs])
            started = count
            deadline = time.time() + 60 + count / 50
            while cached_workflows(env.worker) < count and time.time() < deadline:
                await asyncio.sleep(0.5)
            await wait_worker_quiet(deadline)
            release_freed_memory()
            rss[count] = proc_rss_mib(os.getpid())
            cached[count] = cached_workflows(env.worker)
        assert large <= WORKER_SETTINGS.max_cached_workflows  # every one of them stays cached
        added = (cached[large] - cached[small]) or (large - small)  # counted, unless the SDK hides it
        return {"small": small, "large": large, "worker_rss_small_mib": round(rss[small], 1),
                "worker_rss_large_mib": round(rss[large], 1), "cached_small": cached[small], "cached_large": cached[large],
                "idle_kib_per_heartbeat": round((rss[large] - rss[small]) * 1024 / added, 1)}


# ---------------------------------------------------------------------------------- (6) pragmas


RECORDED_PRAGMAS = {  # bench/README.md, one run of bench/sqlite_pragmas.py on this kind of machine
    "source": "bench/README.md (recorded run)",
    "rows": [
        {"offered": 10, "pragmas": "default", "p50_ms": 34, "p99_ms": 856, "completed_per_s": 10.0},
        {"offered": 10, "pragmas": "wal+normal", "p50_ms": 20, "p99_ms": 511, "completed_per_s": 10.0},
        {"offered": 33, "pragmas": "default", "p50_ms": 1470, "p99_ms": 6237, "completed_per_s": 28.1},
        {"offered": 33, "pragmas": "wal+normal", "p50_ms": 68, "p99_ms": 663, "completed_per_s": 32.9},
    ],
}


def pragma_rerun() -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "bench" / "sqlite_pragmas.py"), "--rate", "33", "--spread", "10"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    return {"source": "rerun: " + " ".join(cmd[1:]), "table": out.strip().splitlines()[-8:]}


# ------------------------------------------------------------------------------------------- main


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def phase(title: str, t_start: float) -> None:
    print(f"[{time.monotonic() - t_start:4.0f}s] {title}", flush=True)


def ratio(a, b):
    return None if not a or not b else round(a / b, 2)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small ramps and a 500-heartbeat sync (< 5 min)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=[OURS_NOOP, OURS_MIX, "schedules", "poller", "sync", "idle", "pragmas"])
    args = parser.parse_args()
    quick = args.quick
    if quick:
        noop_rates, mix_rates, sched_rates, poll_rate, window = [25, 50], [50], [10, 20], 25, 10.0
        apps, per_app = 50, 10
    else:
        noop_rates, mix_rates = [25, 50, 60, 75, 90, 100], [25, 50, 60, 75, 90]
        sched_rates, poll_rate, window = [5, 10, 15, 20, 30], 25, 30.0
        apps, per_app = 1000, 10
    t_start = time.monotonic()
    facts = machine_facts()
    print(f"machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, {facts['kernel']}, "
          f"python {facts['python']}, temporalio {facts['temporalio']}, {facts['temporal_cli'].splitlines()[0] if facts['temporal_cli'] else ''}",
          flush=True)
    result: dict[str, Any] = {"mode": "quick" if quick else "full", "machine": facts,
                              "worker_settings": {"sandboxed": WORKER_SETTINGS.sandboxed,
                                                  "max_cached_workflows": WORKER_SETTINGS.max_cached_workflows}}
    history: dict[str, Any] = {}
    steps: dict[str, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder = Path(tmp)
        if OURS_NOOP not in args.skip:
            phase("(1) HeartbeatWorkflow: capacity and lateness, no-op ticks", t_start)
            steps[OURS_NOOP] = await ramp(folder, OURS_NOOP, noop_rates, window, 0.0)
        if OURS_MIX not in args.skip:
            phase(f"(1) HeartbeatWorkflow: capacity and lateness, {MIX_SUBSTANTIVE_SHARE:.0%} substantive ticks", t_start)
            steps[OURS_MIX] = await ramp(folder, OURS_MIX, mix_rates, window, MIX_SUBSTANTIVE_SHARE, history)
        if "schedules" not in args.skip:
            phase("(2a) Temporal Schedules, one per heartbeat, no-op ticks", t_start)
            steps["schedules"] = await ramp(folder, "schedules", sched_rates, window, 0.0)
        if "poller" not in args.skip:
            phase("(2b) 15-second poller over a due-rows table, no-op ticks", t_start)
            steps["poller"] = [await tick_step(folder, "poller", poll_rate, window, start_rate_guess=1000)]
            s = steps["poller"][0]
            print(f"    p50 {_fmt(s.p50)} p99 {_fmt(s.p99)} completed {s.completed}/{s.n}", flush=True)
        if "sync" not in args.skip:
            phase(f"(4) sync: install / re-sync / uninstall {apps * per_app} heartbeats", t_start)
            result["sync"] = await sync_bench(folder, apps, per_app)
        if "idle" not in args.skip:
            small, large = (500, 1500) if quick else (1000, 5000)
            phase(f"(5) idle memory: worker RSS at {small} and {large} sleeping heartbeats", t_start)
            result["idle"] = await idle_bench(folder, small, large)
    if "pragmas" not in args.skip:
        result["sqlite_pragmas"] = RECORDED_PRAGMAS if quick else pragma_rerun()

    ours_cap, ours_limit = capacity(steps.get(OURS_NOOP, []))
    ours_at_cap = at_rate(steps.get(OURS_NOOP, []), ours_cap)
    mix_cap, mix_limit = capacity(steps.get(OURS_MIX, []))
    mix_at_cap = at_rate(steps.get(OURS_MIX, []), mix_cap)
    sched_cap, sched_limit = capacity(steps.get("schedules", []))
    poll = (steps.get("poller") or [None])[0]
    # The poller runs no-op ticks: compare it with our no-op ticks at its rate.
    ours_same_rate = at_rate(steps.get(OURS_NOOP, []), poll.offered if poll else None) or ours_at_cap
    sync = result.get("sync", {})
    result.update({
        "capacity_ticks_per_s": ours_cap,
        "capacity_is_lower_bound": not ours_limit,
        "p50_lateness_s": _r(ours_at_cap.p50) if ours_at_cap else None,
        "p99_lateness_s": _r(ours_at_cap.p99) if ours_at_cap else None,
        "mix_capacity_ticks_per_s": mix_cap,
        "mix_capacity_is_lower_bound": not mix_limit,
        "mix_substantive_share": MIX_SUBSTANTIVE_SHARE,
        "mix_p50_lateness_s": _r(mix_at_cap.p50) if mix_at_cap else None,
        "mix_p99_lateness_s": _r(mix_at_cap.p99) if mix_at_cap else None,
        "schedules_capacity_ticks_per_s": sched_cap,
        "schedules_capacity_is_lower_bound": not sched_limit,
        "poller_p50_lateness_s": _r(poll.p50) if poll else None,
        "poller_p99_lateness_s": _r(poll.p99) if poll else None,
        "poller_completed_ticks_per_s": round(poll.completed / poll.window, 1) if poll else None,
        "capacity_ratio_vs_schedules": ratio(ours_cap, sched_cap),
        "p50_lateness_ratio_poller_vs_ours": ratio(poll.p50 if poll else None,
                                                   ours_same_rate.p50 if ours_same_rate else None),
        "events_per_noop_tick": history.get("events_per_noop_tick"),
        "bytes_per_noop_tick": history.get("bytes_per_noop_tick"),
        "events_per_substantive_tick": history.get("events_per_substantive_tick"),
        "bytes_per_substantive_tick": history.get("bytes_per_substantive_tick"),
        "install_heartbeats_per_s": sync.get("install_heartbeats_per_s"),
        "resync_unchanged_s": sync.get("resync_unchanged_s"),
        "resync_unchanged_writes": sync.get("resync_unchanged_writes"),
        "uninstall_heartbeats_per_s": sync.get("uninstall_heartbeats_per_s"),
        "idle_kib_per_heartbeat": result.get("idle", {}).get("idle_kib_per_heartbeat"),
        "history": history,
        "steps": {k: [s.to_json() for s in v] for k, v in steps.items()},
        "wall_s": round(time.monotonic() - t_start, 1),
    })

    rows = [["variant", "offered/s", "N", "done", "p50 s", "p99 s", "max s", "srv cpu", "srv MiB", "wkr cpu", "wkr MiB", "ok"]]
    for v in steps.values():
        for s in v:
            rows.append([s.variant, f"{s.offered:g}", str(s.n), str(s.completed), _fmt(s.p50).rstrip("s"),
                         _fmt(s.p99).rstrip("s"), _fmt(max(s.lateness) if s.lateness else None).rstrip("s"),
                         f"{s.server_cpu:.2f}", f"{s.server_rss:.0f}", f"{s.worker_cpu:.2f}", f"{s.worker_rss:.0f}",
                         "yes" if s.ok else "NO"])
    print()
    print(table(rows))
    print()
    summary = [["measure", "value", "target"]]
    for key, target in [("capacity_ticks_per_s", ">= 100"), ("p50_lateness_s", ""), ("p99_lateness_s", "<= 1"),
                        ("mix_capacity_ticks_per_s", ""), ("mix_p50_lateness_s", ""), ("mix_p99_lateness_s", "<= 1"),
                        ("schedules_capacity_ticks_per_s", ""), ("capacity_ratio_vs_schedules", ">= 3"),
                        ("poller_p50_lateness_s", ""), ("p50_lateness_ratio_poller_vs_ours", ">= 10"),
                        ("events_per_noop_tick", "<= 6"), ("bytes_per_noop_tick", ""),
                        ("events_per_substantive_tick", ""), ("bytes_per_substantive_tick", ""),
                        ("install_heartbeats_per_s", ">= 150"), ("resync_unchanged_s", "<= 5 (10k)"),
                        ("resync_unchanged_writes", "0"), ("uninstall_heartbeats_per_s", ""),
                        ("idle_kib_per_heartbeat", "<= 20")]:
        value = result.get(key)
        summary.append([key, "-" if value is None else str(value), target])
    for kind in ("noop", "substantive"):
        if f"history_at_can_kib_{kind}" in history:
            summary.append([f"history at continue-as-new ({kind})",
                            f"{history[f'history_at_can_events_{kind}']} events, "
                            f"{history[f'history_at_can_kib_{kind}']} KiB after {history[f'can_after_ticks_{kind}']} ticks", ""])
    print(table(summary))
    print()
    for variant, key in ((OURS_NOOP, "capacity_is_lower_bound"), (OURS_MIX, "mix_capacity_is_lower_bound"),
                         ("schedules", "schedules_capacity_is_lower_bound")):
        if steps.get(variant) and result[key]:
            print(f"note: every {variant} step met p99 <= 1 s: its capacity is at least the top rate tried.")
    # latest.json is the last complete run of either kind; quick.json / full.json keep the last of
    # each; a run with --skip writes partial.json only.
    targets = [RESULTS.with_name("partial.json")] if args.skip else [RESULTS, RESULTS.with_name(f"{result['mode']}.json")]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = target.with_suffix(".json.tmp")
        tmp_path.write_text(json.dumps(result, indent=2) + "\n")
        tmp_path.replace(target)
    print(f"\nwrote {', '.join(str(t.relative_to(ROOT)) for t in targets)} ({result['wall_s']:.0f}s)")


if __name__ == "__main__":
    asyncio.run(main())
