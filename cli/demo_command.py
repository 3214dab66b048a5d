"""`heartbeats demo`: the whole product on one machine, with no API key.

Brings up the local Temporal server, a worker and the HTTP server (API and dashboard, on
127.0.0.1:8080 or a free port when that is taken), creates tenant `demo` with sample records,
installs the example apps of manifests/, fires one run-now and shows its receipt, then prints
what to look at. Runs until Ctrl-C and stops everything it started.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path

import click

from cli.install_commands import print_install
from client.checks import load_manifests
from client.local_server import find_config, load_config, running_dev_server_async
from client.sync import install_manifests
from contract.errors import Unavailable
from contract.names import SIGNAL_RUN_NOW, heartbeat_workflow_id
from runtime.connection import connect, own_runtime
from store.models import Receipt

DEMO_TENANT = "demo"
DEMO_TIMEZONE = "Europe/Berlin"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the repository (editable install)
EXAMPLE_MANIFESTS = REPO_ROOT / "manifests"
EXAMPLE_WORKFLOWS = EXAMPLE_MANIFESTS / "workflows"
# The heartbeat the demo fires once: its pre-filter finds the sample KPIs, so the agent wakes.
RUN_NOW_TARGET = heartbeat_workflow_id(DEMO_TENANT, "marketing", "cmo", "hourly_kpi")

# The HTTP server's port when it is free; otherwise any free one.
DEMO_API_PORT = 8080

# Records the example apps' pre-filters find: active campaigns for the sales cadence, KPIs for the CMO.
SAMPLE_RECORDS = [
    ("sales", "campaign", "q4-outbound", {"name": "Q4 outbound", "status": "active", "leads": 12}),
    ("sales", "campaign", "spring-webinar", {"name": "Spring webinar", "status": "paused", "leads": 4}),
    ("sales", "lead", "ada", {"name": "Ada Lovelace", "campaign_id": "q4-outbound", "touches": 2}),
    ("marketing", "kpi", "signups", {"metric": "signups", "value": 182, "target": 250, "period": "week"}),
    ("marketing", "kpi", "cac", {"metric": "cac_usd", "value": 41.5, "target": 35, "period": "week"}),
    ("marketing", "x_post", "launch", {"status": "draft", "text": "We shipped heartbeats."}),
]


async def seed_demo_tenant(store) -> None:
    """Tenant `demo` and its sample records (idempotent: upserts)."""
    await store.tenants.upsert(tenant=DEMO_TENANT, timezone=DEMO_TIMEZONE)
    for app, record_type, record_id, data in SAMPLE_RECORDS:
        await store.records.put(tenant=DEMO_TENANT, app=app, record_type=record_type, record_id=record_id, data=data)


async def wait_for_receipt(store, heartbeat_id: str, *, newer_than: int, timeout: float = 15.0) -> Receipt | None:
    """The newest receipt of a heartbeat once it has more than `newer_than` receipts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        receipts = await store.receipts.list(tenant=DEMO_TENANT, heartbeat_id=heartbeat_id, limit=1000)
        if len(receipts) > newer_than:
            return receipts[0]
        await asyncio.sleep(0.1)
    return None


async def start_demo_run(client, store) -> str:
    """One run of the example expense workflow, left waiting for its approval (a demo that ran before
    keeps its run: the key names it)."""
    from client.machines import start_run
    from contract.errors import Conflict
    from contract.names import machine_workflow_id

    try:
        started = await start_run(client, store, tenant=DEMO_TENANT, app="expenses", workflow="expense_approval",
                                  key="demo-claim", variables={"AMOUNT": 120, "NOTE": "taxi to the airport"})
        return started.id
    except Conflict:
        return machine_workflow_id(DEMO_TENANT, "expenses", "expense_approval", "demo-claim")


def listen_for_api() -> socket.socket:
    """The HTTP server's socket: 127.0.0.1:8080, or a free port when 8080 is taken (a `heartbeats serve`)."""
    from api.server import listen

    try:
        return listen("127.0.0.1", DEMO_API_PORT)
    except Unavailable:
        return listen("127.0.0.1", 0)


async def run_demo(config_path: Path | None) -> None:
    from api.app import build_context, create_app
    from api.backends import Backends
    from api.server import banner, base_url, curl_example, login_link, uvicorn_server
    from api.settings import load_settings
    from store import open_store
    from worker import run_worker

    config = load_config(find_config(config_path))
    loaded = load_manifests(sorted(EXAMPLE_MANIFESTS.glob("*.yaml")) + sorted(EXAMPLE_WORKFLOWS.glob("*.yaml")))
    api_settings = load_settings()
    api_socket = listen_for_api()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with running_dev_server_async(config, quiet=True) as server:
        client = await connect(address=server.address, namespace=server.namespace)
        store = await open_store()
        worker = asyncio.create_task(run_worker(client, stop=stop))
        # The HTTP server in this process, on the demo's store and Temporal client.
        api = build_context(api_settings, backends=Backends(store=store, temporal=client))
        http = uvicorn_server(create_app(api), quiet=True)
        http_serving = asyncio.create_task(http.serve(sockets=[api_socket]))
        api_url = base_url(api_socket)
        try:
            await seed_demo_tenant(store)
            click.echo(f"Temporal dev server {server.address}, web UI {server.ui_url}; worker running.")
            for line in banner(api_url, api.token):
                click.echo(line)
            click.echo(f"Tenant {DEMO_TENANT!r} ({DEMO_TIMEZONE}) with {len(SAMPLE_RECORDS)} sample records.\n")
            for result in await install_manifests(client, store, loaded, tenant=DEMO_TENANT):
                print_install(result)

            before = len(await store.receipts.list(tenant=DEMO_TENANT, heartbeat_id=RUN_NOW_TARGET, limit=1000))
            await client.get_workflow_handle(RUN_NOW_TARGET).signal(SIGNAL_RUN_NOW)
            receipt = await wait_for_receipt(store, RUN_NOW_TARGET, newer_than=before)
            waiting = await start_demo_run(client, store)
            click.echo(f"\nRun-now of {RUN_NOW_TARGET}; its receipt:")
            click.echo(json.dumps(receipt.to_json(), indent=2) if receipt else "  (none yet: see `heartbeats runs` below)")
            click.echo(f"""
Look at:
  web UI:     {server.ui_url}/namespaces/{server.namespace}/workflows
  heartbeats: .venv/bin/heartbeats list --tenant {DEMO_TENANT}
  receipts:   .venv/bin/heartbeats runs {RUN_NOW_TARGET}
  run-now:    .venv/bin/temporal workflow signal --workflow-id {RUN_NOW_TARGET} --name run_now
  status:     .venv/bin/temporal workflow query --workflow-id {RUN_NOW_TARGET} --type status
  by status:  .venv/bin/temporal workflow list --query 'HeartbeatTenant="{DEMO_TENANT}" AND HeartbeatStatus="active"'
  workflow:   .venv/bin/heartbeats workflow show {waiting}   (waits for: workflow transition {waiting} approve --payload '{{"approver": "ada"}}')
  dashboard:  {login_link(api_url, api.token)}
  API:        {curl_example(api_url, api.token)}
Press Ctrl-C to stop.""")
            await stop.wait()
        finally:
            stop.set()
            http.should_exit = True  # finishes the requests in flight, then stops
            await http_serving
            await worker
            await store.close()
            api_socket.close()
    click.echo("Demo stopped.", err=True)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Local server settings (default: ./temporal-dev.yaml, else the repository's).")
def demo(config_path: Path | None) -> None:
    """Run the demo: local Temporal server, a worker, tenant `demo`, the example apps installed.

    Needs no API key. Fires one run-now and prints its receipt and what to look at.
    Runs until Ctrl-C and stops everything it started.

    \b
    Example:
      heartbeats demo        # or: make demo
    """
    with own_runtime():  # the SDK's threads end before the interpreter does
        asyncio.run(run_demo(config_path))


COMMANDS = [demo]
