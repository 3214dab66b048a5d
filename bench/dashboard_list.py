"""The dashboard's heartbeat list with 10,000 heartbeats installed: install, then page, search, walk.

    .venv/bin/python bench/dashboard_list.py            # 10,000 heartbeats (10 apps), 20 requests per kind (~6 min)
    .venv/bin/python bench/dashboard_list.py --quick    # 1,000 heartbeats (1 app), 10 requests per kind (~1 min)

A dev server (free ports, temp database, the WAL pragmas of temporal-dev.yaml; SQLite visibility),
the real worker (`python worker.py`, production WorkerSettings, in a process of its own as a
deployment runs it) and a temp SQLite store with one tenant. The heartbeats come in apps of 10
agents x 100 (a manifest file holds at most 50,000 YAML nodes, about 3,300 heartbeats of this
shape), each daily at a time 12 h ahead, so none fires during the run, with the
`_internal_app_records` pre-filter (no LLM). The YAML files go through client.checks.load_manifests
and client.sync.install_manifests (what `heartbeats install` does), timed; then the bench waits
until visibility lists them all and until the worker has run every first workflow task (the task
queue's backlog is empty and 200 sampled status queries are answered), requesting the tenant's
first page once a second meanwhile.

`heartbeats serve`'s app (api.app.create_app with build_context, on uvicorn on a socket) is signed
in with GET /login?token=... and an httpx client measures, one request at a time as an operator
would: the tenant's whole list walked by its `rel="next"` links (latency per page), its first page,
page 100 (where the walk got it), a search (`q=` a slug prefix matching 100), an app's page and a
search in it, the list's htmx refresh, the needs-attention page `/` and `/tenants`. Per kind:
median, p95, max and the rows shown. To say what dominates: CPU of the dev server, the worker and
this process (the HTTP server and the client) from /proc over each kind; a cProfile of this process
over the tenant's page and its refresh; and the dashboard's client calls timed alone (the visibility
page of 50, the 50 status queries, health() and list_runs, the store's reads of apps).

Writes bench/results/dashboard_list[-quick].json. Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from machine import machine_facts, proc_cpu_s, proc_rss_mib  # noqa: E402
from temporalio.api.enums.v1 import TaskQueueType  # noqa: E402
from temporalio.api.taskqueue.v1 import TaskQueue  # noqa: E402
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

from api.app import build_context, create_app  # noqa: E402
from api.backends import Backends  # noqa: E402
from api.server import base_url, listen, uvicorn_server  # noqa: E402
from api.settings import load_settings  # noqa: E402
from client.checks import load_manifests  # noqa: E402
from client.local_server import DevServerConfig, DevServerError, running_dev_server_async  # noqa: E402
from client.machines import list_runs  # noqa: E402
from client.operations import health  # noqa: E402
from client.sync import install_manifests  # noqa: E402
from client.temporal import StatusReader, entities_query  # noqa: E402
from contract.names import TASK_QUEUE  # noqa: E402
from store import open_store  # noqa: E402

RESULTS_FOLDER = ROOT / "bench" / "results"
TENANT = "bench"
APP_PREFIX = "fleet"  # apps fleet0, fleet1, ...
TOKEN = "bench-dashboard-token-0123456789abcdefghijklmnop"
AGENTS = 10  # per app
PER_AGENT = 100  # heartbeats per agent: an app of 1,000 (a manifest file holds at most 50,000 YAML nodes, 1 MiB)
PER_APP = AGENTS * PER_AGENT
DEEP_PAGE = 100  # the page the walk's link is kept for (or the last, when the list is shorter)


class Cpu:
    """CPU seconds of the dev server, the worker and this process between two reads."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self.read()
        self.t = time.monotonic()

    def read(self) -> dict[str, float]:
        return {name: proc_cpu_s(pid) for name, pid in self.pids.items()}

    def cores(self) -> dict[str, float]:
        """Cores used by each since the start (CPU s / wall s)."""
        end, wall = self.read(), max(1e-9, time.monotonic() - self.t)
        return {name: round((end[name] - self.start[name]) / wall, 2) for name in self.pids}


def stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
            "max_s": round(ordered[-1], 4)}


# ------------------------------------------------------------------------------------ the manifest


def manifest_yaml(app: str, time_of_day: str) -> str:
    """One app: AGENTS agents x PER_AGENT daily heartbeats at `time_of_day` (UTC), a records pre-filter."""
    lines = [f"id: {app}", "agents:"]
    for a in range(AGENTS):
        lines += [f"  - id: agent{a}", "    heartbeats:"]
        for k in range(PER_AGENT):
            lines += [f"      - slug: hb{k:03d}", "        skill: _internal_app_records", "        tool: query",
                      f"        params: {{record_type: r{k}}}", "        schedule_type: daily",
                      f'        time_of_day: "{time_of_day}"']
    return "\n".join(lines) + "\n"


def heartbeat_ids(apps: int) -> list[str]:
    return [f"heartbeat:{TENANT}:{APP_PREFIX}{i}:agent{a}:hb{k:03d}"
            for i in range(apps) for a in range(AGENTS) for k in range(PER_AGENT)]


def tenant_search(apps: int) -> str:
    """A slug prefix matching about 100 of the tenant's heartbeats: one slug of each agent (10 apps),
    or ten (one app)."""
    return "hb012" if apps * AGENTS >= 100 else "hb01"


APP_SEARCH = "hb01"  # ten slugs of each of an app's ten agents: 100


# ------------------------------------------------------------------------------------ waiting


async def describe_workflow_queue(client: Client):
    return await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=TASK_QUEUE),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, report_stats=True))


async def workflow_backlog(client: Client) -> int:
    """The approximate backlog of workflow tasks on the heartbeats task queue (the server refreshes
    it every few seconds)."""
    return (await describe_workflow_queue(client)).stats.approximate_backlog_count


async def worker_polling(client: Client) -> bool:
    return bool((await describe_workflow_queue(client)).pollers)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


# ------------------------------------------------------------------------------------ pages


NEXT_LINK = re.compile(r'<a href="([^"]+)" rel="next">')


def section_rows(section_id: str) -> Callable[[str], int]:
    """Rows (without the header row) of the page's section whose id starts with `section_id`."""
    def rows(body: str) -> int:
        start = body.find(f'<section id="{section_id}')
        if start < 0:
            return 0
        section = body[start:body.find("</section>", start)]
        return max(0, section.count("<tr>") - 1)
    return rows


entity_rows = section_rows("entities-")  # the heartbeats-and-tasks list
attention_rows = section_rows("attention")


def unanswered(body: str) -> int:
    found = re.search(r"(\d+) answered from search attributes only", body)
    return int(found.group(1)) if found else 0


async def timed_get(http: httpx.AsyncClient, url: str) -> tuple[float, httpx.Response]:
    t = time.perf_counter()
    response = await http.get(url)
    elapsed = time.perf_counter() - t
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code}\n{response.text[:2000]}")
    return elapsed, response


async def walk(http: httpx.AsyncClient, first: str) -> dict[str, Any]:
    """Follow rel="next" from the first page to the end: latency and rows per page, the deep page's URL."""
    url, latencies, rows, missing, deep_url, deep_page = first, [], [], 0, first, 1
    while url:
        elapsed, response = await timed_get(http, url)
        latencies.append(elapsed)
        rows.append(entity_rows(response.text))
        missing += unanswered(response.text)
        if len(latencies) <= DEEP_PAGE and rows[-1]:
            deep_url, deep_page = url, len(latencies)
        found = NEXT_LINK.search(response.text)
        url = html.unescape(found.group(1)) if found else ""
    return {"pages": len(latencies), "rows_total": sum(rows), "rows_per_page": sorted(set(rows)),
            "unanswered_total": missing, **stats(latencies),
            "first_10_median_s": round(statistics.median(latencies[:10]), 4),
            "last_10_median_s": round(statistics.median(latencies[-10:]), 4),
            "latencies_s": [round(x, 4) for x in latencies], "deep_url": deep_url,
            "deep_page": deep_page}


async def measure_kind(http: httpx.AsyncClient, url: str, n: int, rows_of: Callable[[str], int],
                       cpu_pids: dict[str, int]) -> dict[str, Any]:
    await timed_get(http, url)  # one warm-up request, not counted
    latencies, rows, missing, size = [], set(), 0, 0
    cpu = Cpu(cpu_pids)
    for _ in range(n):
        elapsed, response = await timed_get(http, url)
        latencies.append(elapsed)
        rows.add(rows_of(response.text))
        missing += unanswered(response.text)
        size = len(response.content)
    return {"url": url, **stats(latencies), "rows": sorted(rows), "unanswered_total": missing, "bytes": size,
            "cores": cpu.cores()}


async def profile_requests(http: httpx.AsyncClient, url: str, n: int, *, fragment: bool = False) -> list[str]:
    """cProfile of this process (the HTTP server and the client) over n requests: the top functions
    by own time, and by cumulative time among the product's modules."""
    import cProfile
    import io
    import pstats

    headers = {"HX-Request": "true"} if fragment else {}
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await http.get(url, headers=headers)
    profiler.disable()
    out = io.StringIO()
    stats_ = pstats.Stats(profiler, stream=out)
    stats_.sort_stats("tottime").print_stats(12)
    stats_.sort_stats("cumulative").print_stats(r"/(api|client|store)/", 12)
    return [line.rstrip() for line in out.getvalue().splitlines() if line.strip()
            and not line.startswith(("   Ordered by", "   List reduced"))]


async def timed_calls(n: int, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    await call()
    latencies = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t)
    return stats(latencies)


async def breakdown(client: Client, store, n: int, deep_url: str) -> dict[str, Any]:
    """The dashboard's client calls, timed alone in this process (the HTTP server idle)."""
    query = entities_query(TENANT)
    page = parse_qs(urlsplit(deep_url).query).get("page", [""])[0]
    token = base64.urlsafe_b64decode(page.encode()) if page else None

    async def visibility_page(page_token: bytes | None = None) -> list:
        listed = client.list_workflows(query, page_size=50, next_page_token=page_token)
        await listed.fetch_next_page()
        return list(listed.current_page or ())

    first = await visibility_page()
    deep = await visibility_page(token)

    async def statuses(executions: list) -> None:
        reader = StatusReader(client)
        await reader.views(executions)
        if reader.unanswered:
            raise SystemExit(f"{reader.unanswered} status queries unanswered")

    async def one_query() -> None:
        await StatusReader(client).query(first[0].id)

    async def attention_runs() -> None:
        for status in ("waiting", "failed"):
            await list_runs(client, tenant=TENANT, status=status, limit=200)

    return {
        "visibility_first_page": await timed_calls(n, visibility_page),
        "visibility_deep_page": await timed_calls(n, lambda: visibility_page(token)),
        "status_queries_first_page_50": await timed_calls(n, lambda: statuses(first)),
        "status_queries_deep_page_50": await timed_calls(n, lambda: statuses(deep)),
        "status_query_one": await timed_calls(n, one_query),
        "health_failing_disabled": await timed_calls(n, lambda: health(client)),
        "list_runs_waiting_failed": await timed_calls(n, attention_runs),
        "count_all": await timed_calls(n, lambda: client.count_workflows(query)),
        "store_apps_get": await timed_calls(n, lambda: store.apps.get(tenant=TENANT, app=f"{APP_PREFIX}0")),
        "store_apps_list": await timed_calls(n, lambda: store.apps.list(tenant=TENANT)),
    }


# ------------------------------------------------------------------------------------ the run


async def start_dev_server(stack, folder: Path):
    from drills.rig import free_port

    for attempt in range(3):  # a port found free may be taken before the server binds it (tests/temporal_env.py)
        config = DevServerConfig(port=free_port(), ui_port=free_port(), headless=True, log_level="error",
                                 db_filename=str(folder / f"temporal-{attempt}.db"),
                                 sqlite_pragmas={"journal_mode": "wal", "synchronous": "normal"})
        try:
            return await stack.enter_async_context(running_dev_server_async(config, quiet=True))
        except DevServerError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    apps = args.heartbeats // PER_APP
    total = apps * PER_APP
    result: dict[str, Any] = {"heartbeats": total, "apps": apps, "agents_per_app": AGENTS, "per_agent": PER_AGENT,
                              "requests_per_kind": args.requests, "machine": machine_facts()}
    with tempfile.TemporaryDirectory() as folder_name:
        async with contextlib.AsyncExitStack() as stack:
            return await measure(args, result, Path(folder_name), stack, apps, total)


async def measure(args: argparse.Namespace, result: dict[str, Any], folder: Path, stack, apps: int,
                  total: int) -> dict[str, Any]:
    server = await start_dev_server(stack, folder)
    client = await Client.connect(server.address, namespace=server.namespace,
                                  data_converter=pydantic_data_converter)
    db_url = f"sqlite:///{folder / 'store.db'}"
    store = await open_store(db_url)
    stack.push_async_callback(store.close)
    await store.tenants.upsert(tenant=TENANT, timezone="UTC")

    # The real worker, in a process of its own (as `heartbeats worker` runs in a deployment).
    log = (folder / "worker.log").open("a")
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "TEMPORAL_NAMESPACE": server.namespace,
           "HEARTBEATS_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)

    def stop_worker() -> None:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()

    stack.callback(stop_worker)
    if not await wait_until(lambda: worker_polling(client), timeout=120, every=0.5):
        raise SystemExit(f"the worker is not polling after 120 s; its log: {folder / 'worker.log'}")
    pids = {"dev_server": server.pid, "worker": worker.pid, "bench_and_http": os.getpid()}

    # ---- serve the real app (before the install: the list is also read while the worker catches up), sign in
    context = build_context(load_settings(token=TOKEN, token_file=folder / "api-token"),
                            backends=Backends(store=store, temporal=client))
    sock = listen("127.0.0.1", 0)
    http_server = uvicorn_server(create_app(context), quiet=True)
    serving = asyncio.create_task(http_server.serve(sockets=[sock]))

    async def stop_http() -> None:
        http_server.should_exit = True
        await serving
        sock.close()

    stack.push_async_callback(stop_http)
    while not http_server.started:
        await asyncio.sleep(0.05)
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url(sock), timeout=60,
                                                              follow_redirects=True))
    signed = await http.get(f"/login?token={TOKEN}")
    assert signed.status_code == 200 and "Needs attention" in signed.text, signed.text[:500]
    tenant_url, app_url = f"/tenants/{TENANT}", f"/tenants/{TENANT}/apps/{APP_PREFIX}0"

    # ---- install through the product's path
    due = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")  # nothing fires during the run
    paths = []
    for i in range(apps):
        paths.append(folder / f"{APP_PREFIX}{i}.yaml")
        paths[-1].write_text(manifest_yaml(f"{APP_PREFIX}{i}", due))
    print(f"installing {total} heartbeats ({apps} apps x {AGENTS} agents x {PER_AGENT}), daily at {due} UTC",
          flush=True)
    t0 = time.monotonic()
    loaded = load_manifests(paths)
    loaded_s = time.monotonic() - t0
    cpu = Cpu(pids)
    t1 = time.monotonic()
    installed = await install_manifests(client, store, loaded, tenant=TENANT)
    install_s = time.monotonic() - t1
    install_cores = cpu.cores()
    started = sum(len(r.started) for r in installed)
    print(f"  loaded the manifest in {loaded_s:.2f}s; install_manifests {install_s:.1f}s"
          f" ({started / install_s:.1f}/s, {started} started)", flush=True)

    # ---- visibility lists them all, the worker has run every first task
    query = entities_query(TENANT)
    counts: list[int] = []

    async def all_visible() -> bool:
        counts.append((await client.count_workflows(query)).count)
        return counts[-1] >= total

    t2 = time.monotonic()
    listed_ok = await wait_until(all_visible, timeout=600, every=0.5)
    visible_s = time.monotonic() - t2
    print(f"  visibility lists {counts[-1]} after {visible_s:.1f}s more", flush=True)
    sample = random.Random(7).sample(heartbeat_ids(apps), min(200, total))
    # (s since the install began, backlog, sample unanswered, the tenant's first page: s, rows from search attributes)
    timeline: list[tuple[float, int, int, float, int]] = []

    async def worker_caught_up() -> bool:
        backlog = await workflow_backlog(client)
        reader = StatusReader(client)
        if backlog == 0:
            await reader.views([_Execution(i) for i in sample])  # type: ignore[list-item]
        elapsed, response = await timed_get(http, tenant_url)
        timeline.append((round(time.monotonic() - t1, 1), backlog, reader.unanswered if backlog == 0 else -1,
                         round(elapsed, 3), unanswered(response.text)))
        print(f"    {timeline[-1]}", flush=True)
        return backlog == 0 and reader.unanswered == 0

    caught_ok = await wait_until(worker_caught_up, timeout=900, every=1.0)
    worker_s = time.monotonic() - t1
    worker_cores = cpu.cores()
    print(f"  worker ran every first task {worker_s:.1f}s after the install began"
          f" (backlog {timeline[0][1]} at the first look)", flush=True)
    result["install"] = {
        "manifest_load_s": round(loaded_s, 2), "install_manifests_s": round(install_s, 1),
        "install_heartbeats_per_s": round(started / install_s, 1), "started": started,
        "visible_after_install_s": round(visible_s, 1), "all_visible": listed_ok,
        "worker_started_all_after_install_began_s": round(worker_s, 1), "worker_caught_up": caught_ok,
        "backlog_timeline": timeline,
        "first_page_while_catching_up": {**stats([row[3] for row in timeline]),
                                         "pages_with_rows_from_search_attributes": sum(1 for row in timeline if row[4]),
                                         "most_such_rows": max(row[4] for row in timeline)},
        "cores_during_install": install_cores, "cores_install_to_worker_caught_up": worker_cores,
        "rss_mib_after": {name: round(proc_rss_mib(pid), 1) for name, pid in pids.items()},
    }

    # ---- measure
    print(f"walking the tenant's list ({total // 50} pages) by rel=next", flush=True)
    cpu = Cpu(pids)
    walked = await walk(http, tenant_url)
    walked["cores"] = cpu.cores()
    print(f"  {walked['pages']} pages, {walked['rows_total']} rows, median {walked['median_s']}s"
          f" p95 {walked['p95_s']}s max {walked['max_s']}s", flush=True)
    found = tenant_search(apps)
    kinds = {
        f"tenant list, first page (of {total:,})": (tenant_url, entity_rows),
        f"tenant list, page {walked['deep_page']} (deep)": (walked["deep_url"], entity_rows),
        f"tenant list, search q={found}": (f"{tenant_url}?q={found}", entity_rows),
        f"app list, first page (of {PER_APP:,})": (app_url, entity_rows),
        f"app list, search q={APP_SEARCH}": (f"{app_url}?q={APP_SEARCH}", entity_rows),
        "list fragment (htmx refresh)": (tenant_url, entity_rows),
        "needs attention /": ("/", attention_rows),
        "tenants /tenants": ("/tenants", lambda body: max(0, body.count("<tr>") - 1)),
    }
    measured: dict[str, Any] = {}
    for kind, (url, rows_of) in kinds.items():
        if kind.startswith("list fragment"):
            http.headers["HX-Request"] = "true"
        measured[kind] = await measure_kind(http, url, args.requests, rows_of, pids)
        http.headers.pop("HX-Request", None)
        m = measured[kind]
        if "search" in kind:
            m["matches"] = (await walk(http, url))["rows_total"]
        print(f"  {kind}: median {m['median_s']}s p95 {m['p95_s']}s max {m['max_s']}s rows {m['rows']}"
              f"{' of ' + str(m['matches']) if 'matches' in m else ''} cores {m['cores']}", flush=True)
    print("profiling the tenant's page and its fragment (cProfile of this process)", flush=True)
    result["profiles"] = {"tenant page": await profile_requests(http, tenant_url, args.requests),
                          "tenant list fragment": await profile_requests(http, tenant_url, args.requests,
                                                                         fragment=True)}
    result["walk"] = walked
    result["pages"] = measured
    print("timing the client calls alone", flush=True)
    result["calls"] = await breakdown(client, store, args.requests, walked["deep_url"])
    for name, value in result["calls"].items():
        print(f"  {name}: median {value['median_s']}s p95 {value['p95_s']}s", flush=True)
    result["rss_mib_end"] = {name: round(proc_rss_mib(pid), 1) for name, pid in pids.items()}
    logged = (folder / "worker.log").read_text(errors="replace").splitlines()
    result["worker_log"] = {"lines": len(logged), "warnings_or_errors": [line for line in logged
                            if any(word in line for word in ("WARNING", "ERROR", "Traceback"))][:20]}
    result["visibility"] = "temporal server start-dev, SQLite (WAL, synchronous=normal) for history and visibility"
    return result


class _Execution:
    """What StatusReader.view needs of a listed execution: its id (and attributes, if unanswered)."""

    def __init__(self, workflow_id: str) -> None:
        self.id = workflow_id
        from temporalio.common import TypedSearchAttributes

        self.typed_search_attributes = TypedSearchAttributes.empty


def table(result: dict[str, Any]) -> str:
    rows = [("page", "median s", "p95 s", "max s", "rows shown", "n")]
    walked = result["walk"]
    rows.append((f"walk, every page ({walked['pages']})", walked["median_s"], walked["p95_s"], walked["max_s"],
                 f"{walked['rows_total']} in all", walked["n"]))
    for kind, m in result["pages"].items():
        shown = ",".join(map(str, m["rows"])) + (f" of {m['matches']}" if "matches" in m else "")
        rows.append((kind, m["median_s"], m["p95_s"], m["max_s"], shown, m["n"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 heartbeats, 10 requests per kind")
    parser.add_argument("--heartbeats", type=int, help="how many (a multiple of 1,000: apps of 10 agents x 100; default 10,000, --quick 1,000)")
    parser.add_argument("--requests", type=int, help="measured requests per page kind (default 20, --quick 10)")
    args = parser.parse_args()
    args.heartbeats = args.heartbeats or (1_000 if args.quick else 10_000)
    args.requests = args.requests or (10 if args.quick else 20)
    if args.heartbeats < PER_APP or args.heartbeats % PER_APP:
        parser.error(f"--heartbeats: a multiple of {PER_APP} (apps of {AGENTS} agents x {PER_AGENT})")
    t = time.monotonic()
    result = await run(args)
    result["wall_s"] = round(time.monotonic() - t, 1)
    print(table(result))
    path = RESULTS_FOLDER / f"dashboard_list{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({result['wall_s']} s)")


if __name__ == "__main__":
    asyncio.run(main())
