"""`heartbeats demo`: the whole product on one machine, with no API key.

Brings up the local Temporal server, a worker and the HTTP server (API and dashboard, on
127.0.0.1:8080 or a free port when that is taken), creates tenant `demo` with prices for the
offline models and sample records, installs the example apps of manifests/, then runs them so each
area of the dashboard has something in it (cli/demo_seed.py: a run-now, a monthly budget hold,
shadow runs with human decisions, a failing heartbeat, a workflow run waiting for its approval),
and prints what it seeded and where to look. Runs until Ctrl-C and stops everything it started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
from pathlib import Path

import click

from cli.demo_seed import (
    DEMO_PRICES,
    DEMO_TENANT,
    DEMO_TIMEZONE,
    FAILING,
    RUN_NOW_TARGET,
    SAMPLE_RECORDS,
    SHADOW,
    DemoSeed,
    seed_runs,
    seed_tenant,
)
from cli.install_commands import print_install
from client.budgets import spend
from client.checks import load_manifests
from client.local_server import find_config, load_config, running_dev_server_async
from client.operations import heartbeat_runs
from client.sync import install_manifests
from contract.budget import usd
from contract.errors import Unavailable
from contract.heartbeat import MAX_CONSECUTIVE_FAILURES
from runtime.connection import connect, own_runtime

REPO_ROOT = Path(__file__).resolve().parent.parent  # the repository (editable install)
EXAMPLE_MANIFESTS = REPO_ROOT / "manifests"
EXAMPLE_WORKFLOWS = EXAMPLE_MANIFESTS / "workflows"

# The HTTP server's port when it is free; otherwise any free one.
DEMO_API_PORT = 8080


class OneLineRefusals(logging.Filter):
    """The demo's expected failures (its failing heartbeat, its held agent's refusals) logged in one line
    each: a non-retryable ApplicationError (a typed refusal whose message says it all) without its
    traceback. Any other error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from temporalio.exceptions import ApplicationError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError) and error.non_retryable:
            record.msg, record.args = f"{record.getMessage()}: {error}", None
            record.exc_info = record.exc_text = None
        return True


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
    logging.getLogger("temporalio.activity").addFilter(OneLineRefusals())
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
        if server.ui_url and "temporal_ui_url" not in api_settings.model_fields_set:
            api_settings = api_settings.model_copy(update={"temporal_ui_url": server.ui_url})  # the dashboard links here
        api = build_context(api_settings, backends=Backends(store=store, temporal=client))
        http = uvicorn_server(create_app(api), quiet=True)
        http_serving = asyncio.create_task(http.serve(sockets=[api_socket]))
        api_url = base_url(api_socket)
        try:
            await seed_tenant(store)
            click.echo(f"Temporal dev server {server.address}, web UI {server.ui_url}; worker running.")
            for line in banner(api_url, api.token):
                click.echo(line)
            click.echo(f"Tenant {DEMO_TENANT!r} ({DEMO_TIMEZONE}) with {len(SAMPLE_RECORDS)} sample records; the"
                       f" offline models priced at {', '.join(DEMO_PRICES)} (USD per million tokens in, out).\n")
            for result in await install_manifests(client, store, loaded, tenant=DEMO_TENANT):
                print_install(result)
            seeded = await seed_runs(client, store)
            click.echo(f"\nRun-now of {RUN_NOW_TARGET}; its receipt:")
            receipt = seeded.run_now
            click.echo(json.dumps(receipt.to_json(), indent=2) if receipt else "  (none yet: see `heartbeats runs` below)")
            for line in await seeded_lines(store, seeded):
                click.echo(line)
            click.echo(f"""
Look at:
  dashboard:  {login_link(api_url, api.token)}
  web UI:     {server.ui_url}/namespaces/{server.namespace}/workflows
  heartbeats: .venv/bin/heartbeats list --tenant {DEMO_TENANT}
  receipts:   .venv/bin/heartbeats runs {RUN_NOW_TARGET}
  run-now:    .venv/bin/heartbeats run-now {RUN_NOW_TARGET}
  status:     .venv/bin/temporal workflow query --workflow-id {RUN_NOW_TARGET} --type status
  by status:  .venv/bin/temporal workflow list --query 'HeartbeatTenant="{DEMO_TENANT}" AND HeartbeatStatus="active"'
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


async def seeded_lines(store, seeded: DemoSeed) -> list[str]:
    """What the demo seeded for each area of the dashboard, and the command that shows it."""
    cli = ".venv/bin/heartbeats"
    by_agent = await spend(store, tenant=DEMO_TENANT, by="agent")
    total = sum(line.nano_usd for line in by_agent)
    spent = ", ".join(f"{line.key} ${usd(line.nano_usd):.4f}" for line in by_agent) or "nothing yet"
    hold = seeded.hold
    if hold is None:
        held = (f"marketing/content_drafter is not held after {seeded.drafter_runs} runs (was its ceiling raised"
                " or waived this month?)")
    else:
        runs = seeded.drafter_runs
        took = f" after {runs} run{'s' if runs > 1 else ''}" if runs else ""
        held = (f"marketing/content_drafter held at its monthly ceiling{took}: queue item {hold.id}"
                f" ({cli} queue list --tenant {DEMO_TENANT})")
    report = seeded.shadow
    failing = seeded.failing
    last = await heartbeat_runs(store, FAILING, limit=1)
    why = f", last: {last[0].outcome} / {last[0].reason}" if last else ""
    state = ("disabled" if failing.status == "disabled"
             else f"{failing.failure_count} failures in a row ({MAX_CONSECUTIVE_FAILURES} disable it)")
    return [
        f"\nSeeded for the dashboard (tenant {DEMO_TENANT}):",
        f"  spend:     ${usd(total):.4f} so far: {spent} ({cli} spend --tenant {DEMO_TENANT} --by agent)",
        f"  budget:    {held}",
        f"  shadow:    {SHADOW}: {report.cases} cases in shadow, {report.compared} decided, {report.disagree}"
        f" disagreeing ({cli} shadow report {SHADOW})",
        f"  failing:   {FAILING}: {state}{why} ({cli} health --tenant {DEMO_TENANT})",
        f"  waiting:   {seeded.waiting} waits for its approval ({cli} workflow show {seeded.waiting};"
        f""" {cli} workflow transition {seeded.waiting} approve --payload '{{"approver": "ada"}}')""",
    ]


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Local server settings (default: ./temporal-dev.yaml, else the repository's).")
def demo(config_path: Path | None) -> None:
    """Run the demo: local Temporal server, a worker, tenant `demo`, the example apps installed.

    Needs no API key. Runs the example apps so each area of the dashboard has something in it (a
    budget hold, shadow runs, a failing heartbeat, a waiting workflow run), prints what it seeded
    and what to look at.
    Runs until Ctrl-C and stops everything it started.

    \b
    Example:
      heartbeats demo        # or: make demo
    """
    with own_runtime():  # the SDK's threads end before the interpreter does
        asyncio.run(run_demo(config_path))


COMMANDS = [demo]
