"""Event flood: what one HTTP server and one worker sustain, and that a flood runs each case once.

    .venv/bin/python bench/event_flood.py            # 2,000 events for 50 cases: paced over 60 s, then flat out
    .venv/bin/python bench/event_flood.py --quick    # 600 events for 20 cases, 20 s
    .venv/bin/python bench/event_flood.py --postgres postgresql://postgres@127.0.0.1:5432/test   # the store on PostgreSQL

A dev server (free ports, temp database, the WAL pragmas of temporal-dev.yaml), the product's
worker (production WorkerSettings) and `heartbeats serve`'s ASGI app on uvicorn, all on this
machine; the worker and the HTTP server share this process, as `heartbeats demo` runs them. Each
phase installs an app whose one task listens for `case.created` with `dedupe: {key: case_id}`,
then POSTs events with their own `Idempotency-Key`, the case ids drawn at random from the distinct
set, and waits until the worker has taken every accepted event into a run.

Per phase: events/s accepted (202s over the time from the first request to the last answer),
event → run start (the worker's task_cases activity starting with the event's id, minus the moment
its 202 came back; a run that starts before the 202 arrives counts 0), the cases the agent saw
(must equal the distinct cases: each reviewed once), the processed keys in the store, the runs,
and the task's workflow history (events per run, runs after continue-as-new). Writes
bench/results/event_flood[-quick]-{sqlite|postgresql}.json. Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

import worker as product_worker  # noqa: E402
from activities.heartbeat_activities import HeartbeatActivities  # noqa: E402
from api.app import build_context, create_app  # noqa: E402
from api.backends import Backends  # noqa: E402
from api.settings import load_settings  # noqa: E402
from client.checks import LoadedManifest  # noqa: E402
from client.local_server import DevServerConfig, running_dev_server_async  # noqa: E402
from client.sync import install_manifests  # noqa: E402
from contract.messages import TaskCases, TaskCasesRequest  # noqa: E402
from contract.names import TASK_CASES, task_workflow_id  # noqa: E402
from manifest.loader import parse_manifest  # noqa: E402
from skills.catalog import default_registry  # noqa: E402
from store import open_store  # noqa: E402

RESULTS_FOLDER = ROOT / "bench" / "results"
TENANT = "flood"
TOKEN = "bench-token"
MANIFEST = """\
id: {app}
agents:
  - id: reviewer
    tools: [records]
    tasks:
      - slug: review_cases
        prompt: Review each new case.
        dedupe: {{key: case_id, ttl_hours: 168}}
        triggers:
          - {{type: event, event: case.created}}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class TimedActivities(HeartbeatActivities):
    """The product's activities; task_cases notes when it first saw each event id, then runs unchanged."""

    def __init__(self, store, skills) -> None:
        super().__init__(store, skills)
        self.first_seen: dict[str, float] = {}

    @activity.defn(name=TASK_CASES)
    async def task_cases(self, request: TaskCasesRequest) -> TaskCases:
        now = time.time()
        for case in request.cases:
            self.first_seen.setdefault(case.ref, now)
        return await super().task_cases(request)


@dataclass
class Phase:
    name: str
    events: int
    distinct: int
    pace_s: float | None  # spread the requests over this long; None: flat out, `concurrency` at a time
    concurrency: int = 32
    result: dict[str, Any] = field(default_factory=dict)


async def post_all(http: httpx.AsyncClient, app: str, phase: Phase, rng: random.Random) -> tuple[dict[str, float], dict[int, int], float]:
    """POST the phase's events: (accepted event id -> 202 time, status counts, elapsed s)."""
    accepted: dict[str, float] = {}
    statuses: dict[int, int] = {}
    ids = [f"{app}-{i}" for i in range(phase.events)]
    bodies = [{"case_id": f"c{rng.randrange(phase.distinct)}"} for _ in ids]
    # Every distinct case appears at least once.
    for i in range(phase.distinct):
        bodies[i] = {"case_id": f"c{i}"}
    rng.shuffle(bodies)
    url = f"/v1/tenants/{TENANT}/apps/{app}/events/case.created"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(phase.concurrency)
    started = time.time()

    async def one(index: int) -> None:
        if phase.pace_s is not None:
            await asyncio.sleep(max(0.0, started + index * phase.pace_s / phase.events - time.time()))
        async with semaphore:
            response = await http.post(url, json=bodies[index], headers={**headers, "Idempotency-Key": ids[index]})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 202:
            accepted[ids[index]] = time.time()

    await asyncio.gather(*(one(i) for i in range(phase.events)))
    return accepted, statuses, time.time() - started


async def history_sizes(client: Client, workflow_id: str) -> list[int]:
    sizes = []
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history()
        sizes.append(len(history.events))
    return sizes


async def run_phase(phase: Phase, client: Client, store, acts: TimedActivities, http: httpx.AsyncClient) -> None:
    app = f"flood-{phase.name}"
    manifest = parse_manifest(MANIFEST.format(app=app))
    await install_manifests(client, store, [LoadedManifest(Path(f"{app}.yaml"), manifest)], tenant=TENANT)
    task_id = task_workflow_id(TENANT, app, "reviewer", "review_cases")
    cpu_before = time.process_time()
    accepted, statuses, elapsed = await post_all(http, app, phase, random.Random(phase.name))
    deadline = time.time() + 180
    while time.time() < deadline and not all(event_id in acts.first_seen for event_id in accepted):
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # the last run's completion
    cpu = time.process_time() - cpu_before
    latencies = [max(0.0, acts.first_seen[event_id] - at) for event_id, at in accepted.items()
                 if event_id in acts.first_seen]
    receipts = await store.receipts.list(tenant=TENANT, heartbeat_id=task_id, limit=100_000)
    ran = [r for r in receipts if r.outcome in ("substantive", "suppressed")]
    keys = [f"c{i}" for i in range(phase.distinct)]
    processed = await store.dedupe.seen(tenant=TENANT, task_id=task_id, keys=keys, now=receipts[0].at)
    sizes = await history_sizes(client, task_id)
    phase.result = {
        "events": phase.events, "distinct_cases": phase.distinct,
        "offered": f"{phase.events} over {phase.pace_s:.0f} s" if phase.pace_s else f"flat out, {phase.concurrency} at a time",
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "accepted_per_s": round(len(accepted) / elapsed, 1),
        "event_to_run_p50_s": round(pct(latencies, 0.5) or 0, 3),
        "event_to_run_p99_s": round(pct(latencies, 0.99) or 0, 3),
        "event_to_run_max_s": round(max(latencies, default=0), 3),
        "taken_into_a_run": len(latencies),
        "cases_the_agent_saw": sum(r.rows for r in ran),
        "processed_keys": len(processed),
        "runs": len(receipts), "runs_with_new_cases": len(ran),
        "runs_all_duplicates": sum(1 for r in receipts if r.reason == "duplicate"),
        "history_runs": len(sizes), "history_events_max": max(sizes, default=0),
        "history_events_total": sum(sizes),
        "process_cpu_s": round(cpu, 1),
    }


async def open_bench_store(folder: Path, postgres_url: str | None):
    """(the store, an async callable dropping what it made): a temp SQLite file, or a schema of its own."""
    if postgres_url is None:
        async def nothing() -> None:
            return None

        return await open_store(f"sqlite:///{folder / 'store.db'}"), nothing
    import secrets

    import asyncpg

    schema = f"bench_flood_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')

    async def drop() -> None:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()

    return await open_store(postgres_url, connect_args={"server_settings": {"search_path": schema}}), drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 events for 20 cases, paced over 20 s")
    parser.add_argument("--postgres", metavar="URL", help="the store on this PostgreSQL (a schema of its own,"
                        " dropped afterwards) instead of a temp SQLite file")
    args = parser.parse_args()
    events, distinct, pace = (600, 20, 20.0) if args.quick else (2000, 50, 60.0)
    phases = [Phase("paced", events, distinct, pace), Phase("flat", events, distinct, None)]

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        config = DevServerConfig(port=free_port(), ui_port=free_port(), headless=True, log_level="error",
                                 db_filename=str(folder / "temporal.db"),
                                 sqlite_pragmas={"journal_mode": "wal", "synchronous": "normal"})
        async with running_dev_server_async(config, quiet=True) as server:
            client = await Client.connect(server.address, namespace=server.namespace,
                                          data_converter=pydantic_data_converter)
            store, drop_schema = await open_bench_store(folder, args.postgres)
            await store.tenants.upsert(tenant=TENANT, timezone="UTC")
            acts = TimedActivities(store, default_registry())
            worker = product_worker.build_worker(client, acts, settings=product_worker.WorkerSettings.from_env())
            # The flat-out phase measures the server, not the per-app rate limit (default 100/s, burst 200).
            settings = load_settings(token=TOKEN, rate_per_second=1e6, rate_burst=1_000_000)
            app = create_app(build_context(settings, backends=Backends(store=store, temporal=client)))
            port = free_port()
            http_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                        access_log=False))
            async with worker:
                serving = asyncio.create_task(http_server.serve())
                while not http_server.started:
                    await asyncio.sleep(0.05)
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
                    for phase in phases:
                        await run_phase(phase, client, store, acts, http)
                        print(f"{phase.name}: {json.dumps(phase.result)}", flush=True)
                http_server.should_exit = True
                await serving
            await store.close()
            await drop_schema()

    results = {"machine": {"cores": os.cpu_count()}, "store": "postgresql" if args.postgres else "sqlite",
               "phases": {p.name: p.result for p in phases}}
    path = RESULTS_FOLDER / f"event_flood{'-quick' if args.quick else ''}-{results['store']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    failed = [p.name for p in phases if p.result["cases_the_agent_saw"] != p.distinct
              or p.result["processed_keys"] != p.distinct]
    if failed:
        raise SystemExit(f"phases where a case did not run exactly once: {', '.join(failed)}")


if __name__ == "__main__":
    asyncio.run(main())
